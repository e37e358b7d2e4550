"""One exception hierarchy for the API: status and message live on the class.

Each class carries its HTTP status (``code``) and a ``%``-style message
template whose text follows Octavia's ``octavia.common.exceptions`` so that
clients matching on faultstrings keep working. The API turns any
:class:`APIError` into Octavia's error body
``{"faultcode": "Client"|"Server", "faultstring": <message>, "debuginfo": null}``;
nothing matches on message text.
"""

from typing import Any, ClassVar

# The longest text of one value an error message repeats back (characters): enough
# for any real value and for a provider's reasons, far from a huge body.
MAX_ECHO = 1024


def shorten(value: Any, limit: int = MAX_ECHO) -> Any:
    """``value`` as put in an error message: unchanged unless its text is longer
    than ``limit`` characters, then its first ``limit`` characters and how long it was.

    Error messages repeat what the client sent; a 200 MB field must not come
    back as a 200 MB answer.
    """
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return value
    return f"{text[:limit]}... ({len(text)} characters)"


class LbaasError(Exception):
    """Base of every error lbaas raises on purpose."""


class APIError(LbaasError):
    """An error with an HTTP status and an Octavia-shaped message.

    Subclasses set ``code`` (the HTTP status) and ``message`` (a template
    filled from the keyword arguments given to the constructor). Each
    argument is :func:`shorten`-ed first: a message never repeats a huge value.
    """

    code: ClassVar[int] = 500
    message: ClassVar[str] = "An unknown exception occurred."

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.msg = self.message % {k: shorten(v) for k, v in kwargs.items()} if kwargs \
            else self.message
        super().__init__(self.msg)


class InvalidInput(APIError):
    """A request field failed validation (wsme's wording, used by Octavia)."""

    code = 400
    message = "Invalid input for field/attribute %(field)s. Value: '%(value)s'. %(detail)s"


class UnknownAttribute(APIError):
    code = 400
    message = "Unknown attribute for argument %(argument)s: %(attributes)s"


class ValidationError(APIError):
    """A cross-field or cross-object rule failed (Octavia's ValidationException)."""

    code = 400
    message = "Validation failure: %(detail)s"


class MemberSRIOVDisabled(APIError):
    code = 400
    message = "The load balancer flavor does not allow SR-IOV member ports."


class L7RuleValidation(APIError):
    """An L7 rule's fields do not make a rule (Octavia's validate.l7rule_data)."""

    code = 400
    message = "Error parsing L7Rule: %(error)s"


class InvalidL7PolicyAction(APIError):
    code = 400
    message = "Invalid L7 Policy action specified: %(action)s"


class InvalidL7PolicyArgs(APIError):
    """An L7 policy's action and redirect fields disagree (sanitize_l7policy_api_args)."""

    code = 400
    message = "Invalid L7 Policy arguments: %(msg)s"


class InvalidOption(APIError):
    code = 400
    message = "%(value)s is not a valid option for %(option)s"


class ReservedAddress(InvalidOption):
    """An address (and port) a member or its health checks may not reach:
    lbaas's own endpoints or ``[networking] reserved_ips``."""

    message = "%(value)s is not a valid option for %(option)s: %(reason)s"


class DisabledOption(APIError):
    code = 400
    message = "The selected %(option)s is not allowed in this deployment: %(value)s"


class InvalidSubresource(APIError):
    """A referenced object (in the body) does not exist or is not visible."""

    code = 400
    message = "%(resource)s %(id)s not found."


class InvalidFilterArgument(APIError):
    code = 400
    message = "One or more arguments are either duplicate or invalid"


class InvalidSortKey(APIError):
    code = 400
    message = "Supplied sort key '%(key)s' is not valid."


class InvalidSortDirection(APIError):
    code = 400
    message = "Supplied sort direction '%(key)s' is not valid."


class InvalidMarker(APIError):
    code = 400
    message = "Supplied pagination marker '%(key)s' is not valid."


class InvalidLimit(APIError):
    code = 400
    message = "Supplied pagination limit '%(key)s' is not valid."


class InvalidIPAddress(APIError):
    code = 400
    message = "The IP Address %(ip_addr)s is invalid."


class ProviderNotEnabled(APIError):
    code = 400
    message = "Provider '%(prov)s' is not enabled."


class ProviderFlavorMismatch(APIError):
    code = 400
    message = "Flavor '%(flav)s' is not compatible with provider '%(prov)s'"


class ListenerNoChildren(APIError):
    code = 400
    message = "Protocol %(protocol)s listeners cannot have child objects."


class NotAuthorized(APIError):
    """The request carries no identity the API accepts (Octavia's NotAuthorized)."""

    code = 401
    message = "Not authorized."


class PolicyForbidden(APIError):
    code = 403
    message = "Policy does not allow this request to be performed."


class QuotaExceeded(APIError):
    """Octavia's QuotaException: creating would exceed the project's quota."""

    code = 403
    message = "Quota has been met for resources: %(resource)s"


class NotFound(APIError):
    code = 404
    message = "%(resource)s %(id)s not found."


class ImmutableObject(APIError):
    """The load balancer is locked by a change in progress (a PENDING_* status)."""

    code = 409
    message = "%(resource)s %(id)s is immutable and cannot be updated."


class Conflict(APIError):
    """A free-form 409 whose message is given in full."""

    code = 409
    message = "%(detail)s"


class DuplicateListenerEntry(APIError):
    code = 409
    message = ("Another Listener on this Load Balancer is already using protocol "
               "%(protocol)s and protocol_port %(port)d")


class DuplicateMemberEntry(APIError):
    code = 409
    message = ("Another member on this pool is already using ip %(ip_address)s "
               "on protocol_port %(port)d")


class DuplicateHealthMonitor(APIError):
    code = 409
    message = "This pool already has a health monitor"


class DuplicatePoolEntry(APIError):
    code = 409
    message = "This listener already has a default pool"


class PoolInUseByL7Policy(APIError):
    code = 409
    message = "Pool %(id)s is in use by L7 policy %(l7policy_id)s"


class TooManyL7RulesOnL7Policy(APIError):
    code = 409
    message = "Too many rules on L7 policy %(id)s"


class ObjectInUse(APIError):
    code = 409
    message = "%(object)s %(id)s is in use and cannot be modified."


class VIPAddressConflict(APIError):
    code = 409
    message = "The VIP IP address is already in use: %(msg)s"


class IPAddressExhausted(APIError):
    """No free address is left in the subnet's allocation pools (Neutron's 409)."""

    code = 409
    message = "No more IP addresses available on network %(net_id)s."


class RequestTooLarge(APIError):
    """The request body is larger than ``[oslo_middleware] max_request_body_size``
    (oslo.middleware's sizelimit, which Octavia runs)."""

    code = 413
    message = "Request is too large. Larger than max_request_body_size (%(limit)d)."


class DatabaseUnavailable(APIError):
    """The database cannot take the change now (locked too long, read-only,
    unreachable); nothing was changed."""

    code = 503
    message = "The database cannot be written: %(reason)s. Nothing was changed."


class DatabaseFull(APIError):
    """The database's disk (or its size limit) is full; nothing was changed."""

    code = 507
    message = ("The database is full (%(reason)s): free disk space where the database "
               "lives. Nothing was changed.")


class ProviderDriverError(APIError):
    code = 500
    message = "Provider '%(prov)s' reports error: %(user_msg)s"


class ProviderNotFound(APIError):
    code = 501
    message = "Provider '%(prov)s' was not found."


class ProviderNotImplemented(APIError):
    code = 501
    message = "Provider '%(prov)s' does not support a requested action: %(user_msg)s"


class ProviderUnsupportedOption(APIError):
    code = 501
    message = "Provider '%(prov)s' does not support a requested option: %(user_msg)s"


class UnsupportedOption(LbaasError):
    """Raised by a provider driver's validation; the API adds the provider name.

    Carries the user-facing reason, e.g. ``"UDP protocol"``; becomes
    :class:`ProviderUnsupportedOption` (HTTP 501).
    """

    def __init__(self, user_msg: str) -> None:
        self.user_msg = user_msg
        super().__init__(user_msg)


class DriverError(LbaasError):
    """A provider driver failed to realise a load balancer.

    ``reason`` is shown to the tenant (e.g. HAProxy's own error message).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
