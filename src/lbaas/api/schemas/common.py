"""Field types and base classes shared by every resource's schemas.

Request models are strict and forbid unknown attributes (Octavia's wsme types
refuse them too); a violation becomes Octavia's 400 naming the field. No
request string may hold a NUL character (PostgreSQL cannot store one):
:class:`RequestModel` refuses it in every field, nested ones included (a lone
surrogate, JSON's ``"\\ud800"``, is refused as no string by the strict
types). Lists are bounded: at most :data:`~lbaas.common.constants.MAX_TAGS`
tags per object.

The annotations word their refusals as wsme does, the texts Octavia's
clients see: :class:`OneOf` (an enumeration), :class:`Range` (an integer
range), :func:`checked` (a grammar of :mod:`lbaas.common.validate`).
:data:`Tags` is a tag list without repeats (tags are a set, and a repeat
would break the tag table's key).

Response models read ORM rows (``from_attributes``) and print timestamps the
way Octavia does (``2017-02-28T00:41:44``); :func:`envelope` and
:func:`page_envelope` name the ``{"pool": {...}}`` and
``{"pools": [...], "pools_links": [...]}`` shapes for the OpenAPI document.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import types
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, Union, cast, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
    ValidationInfo,
    computed_field,
    create_model,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from lbaas.common import constants as c
from lbaas.common import validate


class _AfterCheck:
    """An annotation whose ``check`` runs after the annotated type's own validation."""

    def check(self, value: Any) -> Any:
        """``value`` if acceptable, else ValueError with the 400's detail."""
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))


@dataclass(frozen=True)
class OneOf(_AfterCheck):
    """``Annotated[str, OneOf(values)]``: one of ``values`` (Octavia's wsme ``Enum``).

    A refusal reads "Value should be one of: A, B" as wsme words it; the
    OpenAPI document lists the values as an ``enum``. Values may be strings
    or numbers (redirect HTTP codes, HTTP versions).
    """

    values: tuple[Any, ...]

    def check(self, value: Any) -> Any:
        """``value`` if allowed, else ValueError."""
        if value not in self.values:
            raise ValueError(f"Value should be one of: {', '.join(map(str, self.values))}")
        return value

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {**handler(schema), "enum": list(self.values)}


@dataclass(frozen=True)
class Range(_AfterCheck):
    """``Annotated[int, Range(low, high)]``: an int within ``low .. high``.

    A refusal reads "Value should be greater or equal to 0" / "Value should
    be lower or equal to 2073600000" as wsme words it; the OpenAPI document
    shows ``minimum``/``maximum``.
    """

    low: int | None
    high: int | None = None

    def check(self, value: int) -> int:
        """``value`` if within the range, else ValueError."""
        if self.low is not None and value < self.low:
            raise ValueError(f"Value should be greater or equal to {self.low}")
        if self.high is not None and value > self.high:
            raise ValueError(f"Value should be lower or equal to {self.high}")
        return value

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        out = dict(handler(schema))
        if self.low is not None:
            out["minimum"] = self.low
        if self.high is not None:
            out["maximum"] = self.high
        return out


def checked(check: Callable[[str], None]) -> AfterValidator:
    """An AfterValidator running a :mod:`lbaas.common.validate` check.

    ``Annotated[str, checked(validate.url)]``: the check's ValueError is the
    400's detail.
    """

    def run(value: str) -> str:
        check(value)
        return value

    return AfterValidator(run)


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValueError("Value should be UUID format") from None


def _ip_address(value: str) -> str:
    return str(_parsed_ip(value))


def _parsed_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # An IPv6 zone ("fe80::1%eth0") names an interface of one host: HAProxy
    # takes none in an address, and Octavia refuses it too.
    try:
        if "%" not in value:
            return ipaddress.ip_address(value)
    except ValueError:
        pass
    raise ValueError("Value should be IPv4 or IPv6 format")


def _ip_address_as_sent(value: str) -> str:
    _parsed_ip(value)
    return value


def _cidr(value: str) -> str:
    try:
        if "%" not in value:
            return ipaddress.ip_network(value, strict=False).with_prefixlen
    except ValueError:
        pass
    raise ValueError("Value should be IPv4 or IPv6 CIDR format")


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _alpn(value: str) -> str:
    # Octavia's AlpnProtocolType words it so, not as an enumeration.
    if value not in c.ALPN_PROTOCOLS:
        raise ValueError("Value should be a valid ALPN protocol ID")
    return value


def _timestamp(value: datetime | None) -> str | None:
    # isoformat: the same text as strftime("%Y-%m-%dT%H:%M:%S") for the naive UTC times
    # stored, at half the cost (a list writes two per object); its arguments passed by
    # position cost a quarter less again.
    return value.isoformat("T", "seconds") if value is not None else None


UUIDStr = Annotated[str, AfterValidator(_uuid), Field(json_schema_extra={"format": "uuid"})]
IPAddressStr = Annotated[str, AfterValidator(_ip_address),
                         Field(json_schema_extra={"format": "ip-address"})]
# An address kept as the client wrote it ("2001:db8:0:0:0:0:0:1" stays so), as
# Octavia's wsme IPAddressType keeps member addresses; compare parsed
# (``ipaddress.ip_address``), not as strings.
IPAddressAsSent = Annotated[str, AfterValidator(_ip_address_as_sent),
                            Field(json_schema_extra={"format": "ip-address"})]
CidrStr = Annotated[str, AfterValidator(_cidr)]
Name = Annotated[str, Field(max_length=255)]
Description = Annotated[str, Field(max_length=255)]
ProjectId = Annotated[str, Field(max_length=36)]
Tag = Annotated[str, Field(max_length=255)]
Tags = Annotated[list[Tag], Field(max_length=c.MAX_TAGS), AfterValidator(_unique)]
Port = Annotated[int, Field(ge=1, le=65535)]
# TLS settings of listeners (towards clients) and pools (towards members).
ContainerRef = Annotated[str, Field(max_length=255)]
CipherString = Annotated[str, Field(max_length=2048)]
TlsVersion = Annotated[str, Field(max_length=32)]
AlpnProtocol = Annotated[str, AfterValidator(_alpn)]

# Response-side: Octavia prints a missing name or description as "".
NameOut = Annotated[str, BeforeValidator(lambda v: v or "")]
Timestamp = Annotated[datetime | None, PlainSerializer(_timestamp, return_type=str | None)]


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _takes_int(annotation: Any) -> bool:
    """True if a field of this type holds an integer (``int``, ``int | None``,
    ``Annotated[int, ...]``, ``Literal[4, 6]``) and never a string."""
    if annotation is int:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_int(get_args(annotation)[0])
    if origin is Literal:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in get_args(annotation))
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_takes_int(a) for a in args)
    return False


def _strings(value: Any) -> Iterator[str]:
    """The strings in a field's value: itself, list items, dict keys and values."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


class RequestModel(BaseModel):
    """Base of request bodies: strict types, unknown attributes and NUL refused."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numeric_strings(cls, value: Any, info: ValidationInfo) -> Any:
        # Octavia's wsme IntegerType takes "80" for 80, and python-octaviaclient
        # sends some numbers so (``--connection-limit``): an integer field takes
        # a string of decimal digits; anything else stays strict.
        if (isinstance(value, str) and info.field_name is not None
                and _INTEGER.fullmatch(value)
                and _takes_int(cls.model_fields[info.field_name].annotation)):
            return int(value)
        return value

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # Nested request models check their own fields.
        for text in _strings(value):
            validate.no_nul(text)
        return value


class ResponseModel(BaseModel):
    """Base of response bodies, read from ORM rows or dicts (rows of columns:
    :meth:`row_dumper`)."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def dump(cls, obj: Any, **given: Any) -> dict[str, Any]:
        """The JSON body of ``obj``: each field is ``obj``'s attribute of that name (its
        key for a dict, the field's default if absent), or the value in ``given``
        (fields computed by a subclass's ``dump``).

        The fields' annotations say how each value is written (:func:`_writer`),
        decided once per class: a list of a thousand objects is not validated
        object by object (issue 12). The values are the database's, of the
        annotated types; the schema tests check the bodies against the models.
        """
        plain, written, computed = cls._fields()
        if isinstance(obj, dict):
            source = {**obj, **given} if given else obj
            values = {name: source[name] if default is _REQUIRED else source.get(name, default)
                      for name, default in plain}
        elif given:
            values = {name: given[name] if name in given else getattr(obj, name)
                      for name, _ in plain}
        else:
            values = {name: getattr(obj, name) for name, _ in plain}
        out = dict(values)
        for name, write in written:
            out[name] = write(values[name])
        if computed:  # properties of the model, from the values as read, after the others
            model = types.SimpleNamespace(**values)
            for name, compute, write in computed:
                value = compute(model)
                out[name] = value if write is None else write(value)
        return out

    @classmethod
    def row_dumper(cls, names: Sequence[str], written: Sequence[str] = (),
                   children: Mapping[str, Mapping[Any, Any]] | None = None,
                   fields: Sequence[str] | None = None,
                   readers: Mapping[str, Callable[[Any], Any]] | None = None,
                   ) -> Callable[[Sequence[Any]], dict[str, Any]]:
        """What :meth:`dump` makes of a result row, for a page of many rows: the plan
        (which value goes where, how it is written) made once, not once a row.

        The function made takes a row: the values named ``names``, in order, each
        first read by its function in ``readers`` if it has one (a database driver's
        row: :func:`lbaas.api.query.column_readers`). Those
        named in ``written`` are written already (timestamps the database wrote:
        :class:`lbaas.api.query.api_timestamp`); ``children`` gives the value of
        other fields (a list's children, written already) by the row's ``id``,
        a row it lacks having none (an empty sequence). ``fields`` keeps only those
        fields (``fields=``; the others need not be in the row). A field given
        nowhere takes its default; raises KeyError (when the dumper is made) for a
        required one, TypeError for a computed field that is not a copy of
        another (:func:`copy_of`).

        The function is one dict display written for the plan and compiled (once
        per plan: :func:`_row_plan`), as :mod:`dataclasses` writes its
        ``__init__``: a list of a thousand load balancers builds its bodies in a
        third of the time of a loop over the fields (issue 12).
        """
        children = children or {}
        readers = readers or {}
        code, env = _row_plan(cls, tuple(names), tuple(written), tuple(children),
                              None if fields is None else tuple(fields), tuple(readers))
        lookups = {f"c{i}": got.get for i, got in enumerate(children.values())}
        reads = {f"r{i}": read for i, read in enumerate(readers.values())}
        return cast(Callable[[Sequence[Any]], dict[str, Any]],
                    types.FunctionType(code, {**env, **lookups, **reads}))

    @classmethod
    def _fields(cls) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...],
                              tuple[tuple[str, Any, Writer], ...]]:
        """The class's plan (:data:`_FIELDS`), made on first use."""
        fields = _FIELDS.get(cls)
        if fields is None:
            writers = {name: _writer(info.annotation, info.metadata)
                       for name, info in cls.model_fields.items()}
            fields = _FIELDS[cls] = (
                tuple((name, _REQUIRED if info.is_required() else info.get_default())
                      for name, info in cls.model_fields.items()),
                tuple((name, write) for name, write in writers.items() if write is not None),
                tuple((name, info.wrapped_property.fget, _writer(info.return_type))
                      for name, info in cls.model_computed_fields.items()))
        return fields


_REQUIRED = object()
Writer = Callable[[Any], Any] | None
# Per class: (name, default) of its fields, (name, writer) of those not written as they
# are, (name, getter, writer) of its computed fields.
_FIELDS: dict[type[ResponseModel], tuple[tuple[tuple[str, Any], ...],
                                         tuple[tuple[str, Any], ...],
                                         tuple[tuple[str, Any, Writer], ...]]] = {}


@functools.lru_cache(maxsize=64)  # a plan per (class, columns, fields=): a few in use
def _row_plan(cls: type[ResponseModel], names: tuple[str, ...], written: tuple[str, ...],
              children: tuple[str, ...], fields: tuple[str, ...] | None,
              read: tuple[str, ...] = (),
              ) -> tuple[types.CodeType, dict[str, Any]]:
    """The code of :meth:`ResponseModel.row_dumper`'s function and the globals it reads
    (writers ``w<n>``, defaults ``d<n>``; the children's lookups ``c<i>`` and the
    readers ``r<i>`` are the caller's, in the order of ``children`` and ``read``)."""
    plain, writes, computed = cls._fields()
    where = {name: f"r{read.index(name)}(v{i})" if name in read else f"v{i}"
             for i, name in enumerate(names)}
    ident = where.get("id")
    for i, name in enumerate(children):
        if ident is None:
            raise KeyError("id")
        where[name] = f"c{i}({ident}, ())"
    writers = {name: write for name, write in writes
               if name not in written and name not in children}
    env: dict[str, Any] = {}

    def value_of(name: str, default: Any, write: Writer) -> str:
        if name in where:
            read = where[name]
        elif default is _REQUIRED:
            raise KeyError(name)
        else:
            env[f"d{len(env)}"] = default
            read = f"d{len(env) - 1}"
        if write is None:
            return read
        env[f"w{len(env)}"] = write
        return f"w{len(env) - 1}({read})"

    items = [f"{name!r}: {value_of(name, default, writers.get(name))}"
             for name, default in plain if fields is None or name in fields]
    defaults = dict(plain)
    for name, compute, write in computed:
        source = getattr(compute, "copy_of", None)
        if source is None:
            raise TypeError(f"{cls.__name__}.{name} is computed: no row dumper")
        if fields is None or name in fields:
            items.append(f"{name!r}: {value_of(source, defaults[source], write)}")
    # The row unpacked once into locals: a result row's items read one by one cost more.
    unpack = "".join(f"v{i}, " for i in range(len(names)))
    text = (f"def dump_row(v):\n    {unpack} = v\n"
            "    return {" + ", ".join(items) + "}\n")
    made: dict[str, Any] = {}
    exec(compile(text, f"<row dumper of {cls.__name__}>", "exec"), made)
    return made["dump_row"].__code__, env


def _nested(cls: type[ResponseModel]) -> Writer:
    """A nested body: ``cls.dump``, but a dict holding exactly its fields, all written as
    they are (``{"id": ...}`` references), is its own body already."""
    names = set(cls.model_fields)
    if cls.model_computed_fields or any(
            _writer(info.annotation, info.metadata) is not None
            for info in cls.model_fields.values()):
        return cls.dump
    return lambda v: v if type(v) is dict and v.keys() == names else cls.dump(v)


def _chain(first: Any, then: Writer) -> Writer:
    return first if then is None else (lambda v: then(first(v)))


def _unless_text(func: Any) -> Writer:
    return lambda v: v if isinstance(v, str) else func(v)


def _writer(annotation: Any, metadata: Sequence[Any] = ()) -> Writer:
    """How a value of a response field becomes JSON (None: as it is), from the field's
    annotation: what pydantic's validation and dump make of a value of that type."""
    for meta in metadata:
        if isinstance(meta, BeforeValidator):  # NameOut: None -> ""; then as the type says
            return _chain(meta.func, _writer(annotation))
        if isinstance(meta, PlainSerializer):  # Timestamp (a dumped body passes as is)
            return _unless_text(meta.func)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        inner = _writer(kinds[0]) if len(kinds) == 1 else None
        return None if inner is None else (lambda v: None if v is None else inner(v))
    if origin is Annotated:
        return _writer(args[0], args[1:])
    if origin is list:
        item = _writer(args[0]) if args else None
        return list if item is None else (lambda v: [item(x) for x in v] if v else [])
    if origin is dict:
        return dict
    if isinstance(annotation, type):
        if issubclass(annotation, ResponseModel):
            return _nested(annotation)
        if issubclass(annotation, BaseModel):
            return lambda v: v if isinstance(v, dict) else v.model_dump(mode="json")
        if annotation is float:
            return float
    return None


def copy_of(name: str) -> Callable[[_Getter], _Getter]:
    """Marks the getter of a computed field that repeats field ``name`` (``tenant_id``):
    :meth:`ResponseModel.row_dumper` copies the value instead of calling it."""
    def mark(getter: _Getter) -> _Getter:
        getter.copy_of = name  # type: ignore[attr-defined]
        return getter

    return mark


_Getter = TypeVar("_Getter", bound=Callable[[Any], Any])


class ProvisionedResponse(ResponseModel):
    """What every object of a load balancer's graph shows: its id, project
    (also as ``tenant_id``), statuses, admin state, timestamps and tags."""

    id: str
    project_id: str | None
    provisioning_status: str
    operating_status: str
    admin_state_up: bool
    created_at: Timestamp
    updated_at: Timestamp
    tags: list[str]

    @computed_field(description="Deprecated alias of project_id.")  # type: ignore[prop-decorator]
    @property
    @copy_of("project_id")
    def tenant_id(self) -> str | None:
        """``project_id`` again: Octavia still prints both on every object that has one."""
        return self.project_id


class IdOnly(ResponseModel):
    """A reference to another object: ``{"id": ...}``."""

    id: str


class PageLink(BaseModel):
    """A pagination link: ``{"href": ..., "rel": "next"|"previous"}``."""

    href: str
    rel: str


class Stats(ResponseModel):
    """Cumulative traffic counters of a listener or a load balancer."""

    active_connections: int
    bytes_in: int
    bytes_out: int
    request_errors: int
    total_connections: int


def envelope(key: str, body: Any, name: str | None = None) -> type[ResponseModel]:
    """The response shape ``{key: body}``.

    Named ``name`` in the OpenAPI document, by default ``body``'s class name
    with ``Response`` made ``Root`` (``PoolResponse`` -> ``PoolRoot``).
    """
    name = name or body.__name__.replace("Response", "") + "Root"
    fields: dict[str, Any] = {key: (body, ...)}
    return create_model(name, __base__=ResponseModel, **fields)


def page_envelope(key: str, body: type[BaseModel],
                  links_key: str | None = None) -> type[ResponseModel]:
    """The shape of a list: ``{key: [body, ...], key_links: [PageLink, ...]}``.

    ``links_key`` where Octavia names the links otherwise
    (``flavorprofile_links``). Named like ``PoolPage`` in the OpenAPI document.
    """
    fields: dict[str, Any] = {key: (list[body], ...),  # type: ignore[valid-type]
                              links_key or f"{key}_links": (list[PageLink], ...)}
    return create_model(body.__name__.replace("Response", "") + "Page", __base__=ResponseModel,
                        **fields)


StatsRoot = envelope("stats", Stats)
