"""Authentication: who is calling, established before any handler runs.

One ASGI middleware (:class:`Authenticate`) asks the configured
:class:`Authenticator` about every request except version discovery (``/``)
and ``/healthcheck``, and either refuses the request itself or passes the
caller on as an :class:`lbaas.api.policy.Identity` in the ASGI scope
(``scope["lbaas.identity"]``, read by :func:`lbaas.api.deps.get_context`).
Handlers never read identity headers.

``[api_settings] auth_strategy`` picks the authenticator (Octavia's option):

- ``keystone`` (:class:`KeystoneAuthenticator`): keystonemiddleware's
  auth_token validates the ``X-Auth-Token`` (its ``[keystone_authtoken]``
  options, token cache and service user, as in Octavia). It is WSGI
  middleware, so each request's headers become a WSGI environ that
  AuthProtocol processes in a worker thread (a cache miss is a blocking call
  to Keystone); the identity is what AuthProtocol sets in that environ after
  removing any the client sent, read with oslo.context as Octavia does. A
  401 AuthProtocol makes itself goes back as it is (with its
  ``WWW-Authenticate``); when Keystone cannot be reached, times out or fails
  (AuthProtocol's plain-text 503) the answer is a 503 in Octavia's fault
  body (:data:`KEYSTONE_UNAVAILABLE`); anything else that fails is a 503
  too: a request is never let through unvalidated. Tokens already in the
  token cache stay valid through an outage, as with Octavia.
- ``apikey`` (:class:`ApiKeyAuthenticator`): lbaas's own keys
  (``lbaas key create``), sent as ``X-Auth-Token``; each names a project
  and roles.
- ``noauth`` (:class:`NoAuthAuthenticator`): the caller's headers are its
  identity (``X-Project-Id``, ``X-Roles``). Only for a loopback bind unless
  the operator opts in (:func:`lbaas.config.check_exposure`).
"""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Receive, Scope, Send

from lbaas.api.errors import fault
from lbaas.api.policy import Identity
from lbaas.common import constants as c
from lbaas.config import Settings
from lbaas.db import apikeys

LOG = logging.getLogger(__name__)

# Octavia's _NOAUTH_PATHS: version discovery and the health check need no identity.
PUBLIC_PATHS = frozenset({"/", "/healthcheck"})
SCOPE_KEY = "lbaas.identity"

Headers = Sequence[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Refusal:
    """A response the authenticator gives instead of the API's."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class Authenticator(Protocol):
    """Turns a request's headers into an Identity, or refuses it."""

    #: True if :meth:`authenticate` may block (it then runs in a worker thread).
    blocking: bool

    def authenticate(self, method: str, path: str, headers: Headers) -> Identity | Refusal:
        ...


class Authenticate:
    """ASGI middleware: every request but :data:`PUBLIC_PATHS` is authenticated first.

    The authenticator is the running service's (``app.state.lbaas.authenticator``).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        authenticator: Authenticator = scope["app"].state.lbaas.authenticator
        args = (scope["method"], scope["path"], scope["headers"])
        try:
            if authenticator.blocking:
                result = await anyio.to_thread.run_sync(authenticator.authenticate, *args)
            else:
                result = authenticator.authenticate(*args)
        except Exception:
            LOG.exception("authentication failed unexpectedly")
            await fault(503, "The authentication service is temporarily unavailable."
                        )(scope, receive, send)
            return
        if isinstance(result, Refusal):
            await send({"type": "http.response.start", "status": result.status,
                        "headers": result.headers})
            await send({"type": "http.response.body", "body": result.body})
            return
        await self.app({**scope, SCOPE_KEY: result}, receive, send)


def _refuse(status: int, message: str) -> Refusal:
    response = fault(status, message)
    return Refusal(status, list(response.raw_headers), bytes(response.body))


# -- noauth ---------------------------------------------------------------------------

# Headers that carry an identity; a request with none of them is the standalone admin.
IDENTITY_HEADERS = (b"x-project-id", b"x-tenant-id", b"x-roles", b"x-user-id",
                    b"x-project-name", b"x-tenant-name", b"x-domain-id", b"x-system-scope")
# Keystone ids are 32 hex digits; names for noauth are letters, digits and ._-@: (1-255).
_ID = re.compile(r"[A-Za-z0-9_.@:-]{1,255}")


class NoAuthAuthenticator:
    """``auth_strategy = noauth``: identity from the request's own headers.

    No identity header at all: the standalone admin of ``default_project_id``.
    Otherwise ``X-Project-Id`` (or ``X-Tenant-Id``) must hold one well-formed
    project id and ``X-Roles`` a comma-separated list of well-formed role
    names; an empty or malformed value is a 401, never a fallback (issue 9).
    """

    blocking = False

    def __init__(self, default_project_id: str) -> None:
        self.default_project_id = default_project_id

    def authenticate(self, method: str, path: str, headers: Headers) -> Identity | Refusal:
        found: dict[bytes, list[str]] = {}
        for name, value in headers:
            key = name.lower()
            if key in IDENTITY_HEADERS:
                found.setdefault(key, []).append(value.decode("latin-1"))
        if not found:
            return Identity(project_id=self.default_project_id, roles=("admin",),
                            standalone_admin=True)
        projects = found.get(b"x-project-id", []) + found.get(b"x-tenant-id", [])
        if len(set(projects)) != 1 or not _ID.fullmatch(projects[0]):
            return _refuse(401, "The request's identity is incomplete or malformed: "
                                "X-Project-Id must hold exactly one project id.")
        roles: list[str] = []
        for listed in found.get(b"x-roles", []):
            for role in filter(None, (r.strip() for r in listed.split(","))):
                if not _ID.fullmatch(role):
                    return _refuse(401, "The request's identity is incomplete or malformed: "
                                        "X-Roles must be a comma-separated list of role "
                                        "names.")
                roles.append(role)
        user = found.get(b"x-user-id", [None])[0]
        return Identity(project_id=projects[0], roles=tuple(roles), user_id=user)


# -- keystone -----------------------------------------------------------------------------

def _environ(method: str, path: str, headers: Headers) -> dict[str, Any]:
    """A WSGI environ carrying the request's headers (no body: auth_token reads none)."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
        "SERVER_NAME": "lbaas", "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": True, "wsgi.multiprocess": False,
        "wsgi.run_once": False}
    for name, value in headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


KEYSTONE_UNAVAILABLE = ("The token cannot be validated: Keystone is unavailable (unreachable, "
                        "timing out or failing). Nothing was done; try again later.")


class KeystoneAuthenticator:
    """``auth_strategy = keystone``: keystonemiddleware's auth_token decides.

    ``config_files`` are lbaas's INI files; their ``[keystone_authtoken]``
    section configures the middleware exactly as in Octavia's config.
    """

    blocking = True

    def __init__(self, config_files: Sequence[str]) -> None:
        from keystonemiddleware import auth_token
        from oslo_config import cfg

        conf = cfg.ConfigOpts()
        conf([], project="lbaas", default_config_files=list(config_files))
        self._protocol = auth_token.AuthProtocol(self._passed, {"oslo_config_config": conf})

    @staticmethod
    def _passed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The application behind auth_token: it only records that it was reached."""
        environ["lbaas.passed"] = True
        start_response("204 No Content", [])
        return []

    def authenticate(self, method: str, path: str, headers: Headers) -> Identity | Refusal:
        from keystoneauth1 import exceptions as ksa_exceptions
        from oslo_context.context import RequestContext

        environ = _environ(method, path, headers)
        answer: dict[str, Any] = {}

        def start_response(status: str, response_headers: list[tuple[str, str]],
                           exc_info: Any = None) -> None:
            answer["status"] = int(status.split()[0])
            answer["headers"] = response_headers

        try:
            body = b"".join(self._protocol(environ, start_response))
        except ksa_exceptions.ConnectionError as e:
            # A Keystone that accepts connections and never answers: keystoneauth's
            # ConnectTimeout is no ConnectFailure, so auth_token lets it out.
            LOG.critical("Unable to validate token: %s", e)
            return _refuse(503, KEYSTONE_UNAVAILABLE)
        if not environ.get("lbaas.passed") and answer["status"] >= 500:
            # auth_token's 503 (Keystone unreachable, timing out or failing) is
            # webob's plain text: Octavia's fault body instead.
            return _refuse(503, KEYSTONE_UNAVAILABLE)
        if not environ.get("lbaas.passed"):
            return Refusal(answer["status"], [(k.lower().encode("latin-1"),
                                               v.encode("latin-1"))
                                              for k, v in answer["headers"]], body)
        if environ.get("HTTP_X_IDENTITY_STATUS") != "Confirmed":
            # delay_auth_decision = true lets invalid tokens through: not here.
            return _refuse(401, "The request you have made requires authentication.")
        ctx = RequestContext.from_environ(environ)
        return Identity(project_id=ctx.project_id, roles=tuple(ctx.roles),
                        user_id=ctx.user_id, domain_id=ctx.domain_id,
                        system_scope=ctx.system_scope, auth_token=ctx.auth_token)


# -- apikey ------------------------------------------------------------------------------

class ApiKeyAuthenticator:
    """``auth_strategy = apikey``: the ``X-Auth-Token`` is a key of ``lbaas key create``.

    The key's project and roles are the identity; headers the client adds
    are ignored. No key, or one never issued (or revoked), is a 401.
    """

    blocking = True

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def authenticate(self, method: str, path: str, headers: Headers) -> Identity | Refusal:
        tokens = [v.decode("latin-1") for k, v in headers if k.lower() == b"x-auth-token"]
        row = None
        if len(tokens) == 1:
            with self.sessions() as session:
                row = apikeys.find(session, tokens[0].strip())
        if row is None:
            refusal = _refuse(401, "The request you have made requires authentication: "
                                   "send an lbaas API key as X-Auth-Token.")
            return Refusal(401, [*refusal.headers, (b"www-authenticate", b"lbaas-apikey")],
                           refusal.body)
        return Identity(project_id=row.project_id, user_id=f"apikey-{row.id}",
                        roles=tuple(r for r in row.roles.split(",") if r))


def make_authenticator(settings: Settings, sessions: sessionmaker[Session]) -> Authenticator:
    """The authenticator of ``[api_settings] auth_strategy``."""
    if settings.auth_strategy == c.KEYSTONE:
        return KeystoneAuthenticator(settings.config_files)
    if settings.auth_strategy == c.APIKEY:
        return ApiKeyAuthenticator(sessions)
    if settings.auth_strategy == c.NOAUTH:
        return NoAuthAuthenticator(settings.default_project_id)
    raise ValueError(f"unknown auth_strategy {settings.auth_strategy!r}")
