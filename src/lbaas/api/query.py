"""List requests: filtering, tags, sorting, keyset pagination and ``fields=``.

Octavia's list conventions (api-ref "Pagination", "Sorting", "Filtering",
"Tags", "Field selection"):

- ``limit`` (capped by ``pagination_max_limit``), ``marker`` (the id of the
  last object of the previous page), ``page_reverse=true`` to walk backwards;
  responses carry ``<resources>_links`` with ``next``/``previous`` hrefs;
- ``sort=key:dir,key2`` or ``sort_key=k1,k2&sort_dir=asc,desc``; the default
  order is ascending ``created_at, id``, and the primary key always ends the
  order (quotas by project, availability zones by name) so that pages are
  stable and markers meaningful;
- any other attribute is an exact-match filter (repeat it to match any of
  several values); ``tags``, ``tags-any``, ``not-tags``, ``not-tags-any`` take
  comma-separated tags;
- ``fields=a,b`` (or repeated) keeps only those attributes in each object.

Unknown filters, sort keys, directions, markers and limits are 400s with
Octavia's messages.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy import (
    Connection,
    Dialect,
    Select,
    String,
    and_,
    case,
    false,
    func,
    inspect,
    or_,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql import ColumnElement, Executable, Subquery
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from lbaas.common import constants as c
from lbaas.common import exceptions as exc
from lbaas.db import models as m

_AUX = {"limit", "marker", "sort", "sort_key", "sort_dir", "fields", "page_reverse"}
_TAG_PARAMS = ("tags", "tags-any", "not-tags", "not-tags-any")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_MIN_DATETIME = datetime(1970, 1, 1)


@dataclass
class ListQuery:
    """The parsed query string of a list request."""

    limit: int | None
    marker: str | None
    page_reverse: bool
    sort: list[tuple[str, str]]
    fields: list[str] | None
    filters: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, list[str]] = field(default_factory=dict)
    raw: list[tuple[str, str]] = field(default_factory=list)


def split_values(values: Sequence[str]) -> list[str]:
    """Repeated, comma-separated values as one list: ``["a,b", "c"]`` -> a, b, c."""
    return [part for v in values for part in v.split(",") if part != ""]


def _sort_dir(value: str) -> str:
    d = value.strip().lower()
    if d not in (c.SORT_ASC, c.SORT_DESC):
        raise exc.InvalidSortDirection(key=value)
    return d


def parse_list_query(request: Request, max_limit: int) -> ListQuery:
    """Parse ``request``'s query string. Raises the 400s named in the module doc."""
    items = list(request.query_params.multi_items())
    params: dict[str, list[str]] = {}
    for key, value in items:
        params.setdefault(key, []).append(value)

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[-1] if values else None

    limit: int | None = max_limit
    raw_limit = one("limit")
    if raw_limit is not None:
        try:
            n = None if raw_limit == "infinite" else int(raw_limit)
        except ValueError:
            raise exc.InvalidLimit(key=raw_limit) from None
        limit = max_limit if n is None or n < 1 else min(n, max_limit)

    sort: list[tuple[str, str]] = []
    if one("sort"):
        for part in split_values(params["sort"]):
            comps = part.split(":")
            if len(comps) == 1:
                sort.append((comps[0], c.DEFAULT_SORT_DIR))
            elif len(comps) == 2:
                sort.append((comps[0], _sort_dir(comps[1])))
            else:
                raise exc.InvalidSortKey(key=part)
    elif one("sort_key"):
        keys = split_values(params["sort_key"])
        dirs = [_sort_dir(d) for d in split_values(params.get("sort_dir", []))]
        dirs += [c.DEFAULT_SORT_DIR] * (len(keys) - len(dirs))
        sort = list(zip(keys, dirs, strict=False))

    page_reverse = (one("page_reverse") or "false").lower() in _TRUE
    fields = split_values(params["fields"]) if "fields" in params else None
    tags = {k: split_values(params[k]) for k in _TAG_PARAMS if k in params}
    filters = {k: v for k, v in params.items() if k not in _AUX and k not in _TAG_PARAMS}
    return ListQuery(limit=limit, marker=one("marker"), page_reverse=page_reverse, sort=sort,
                     fields=fields, filters=filters, tags=tags, raw=items)


def columns_of(model: type[m.Base], exclude: Sequence[str] = (),
               aliases: Mapping[str, InstrumentedAttribute[Any]] | None = None,
               ) -> dict[str, InstrumentedAttribute[Any]]:
    """Filterable/sortable attributes of ``model``: its scalar columns by name.

    JSON columns are left out (they cannot be compared); ``aliases`` adds API
    names that differ from column names (``loadbalancer_id``).
    """
    cols: dict[str, InstrumentedAttribute[Any]] = {}
    for col in model.__table__.columns:
        if col.key in exclude or col.type.__class__.__name__ == "JSON":
            continue
        cols[col.key] = getattr(model, col.key)
    cols.update(aliases or {})
    return cols


def _coerce(name: str, attr: InstrumentedAttribute[Any], raw: str) -> Any:
    try:
        py = attr.type.python_type
    except NotImplementedError:  # pragma: no cover - every column type we use has one
        return raw
    try:
        if py is bool:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if py in (int, float):
            return py(raw)
    except ValueError:
        raise exc.InvalidInput(field=name, value=raw,
                               detail=f"Value should be of type {py.__name__}") from None
    return raw


def _null_default(attr: InstrumentedAttribute[Any]) -> Any:
    py = attr.type.python_type
    if py is datetime:
        return _MIN_DATETIME
    if py in (int, float):
        return 0
    if py is bool:
        return False
    return ""


def _sortable_expr(attr: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """``attr`` as sorted and compared: NULL as its type's least value (Octavia's order),
    a column that holds no NULL as it is (which an index can serve)."""
    if getattr(attr.expression, "nullable", True) is False:
        return attr.expression
    return case((attr.is_not(None), attr), else_=_null_default(attr))


@dataclass
class Page:
    """One page of rows and the Octavia links that go with it: ``model`` objects, or for
    a select of columns the database driver's tuples (:func:`raw_rows`)."""

    rows: list[Any]
    links: list[dict[str, str]]
    # A statement that selects ``rows``: when they are all that the filters match, the
    # filters alone (no order, no limit: nothing for the database to sort).
    source: Select[Any] | None = None
    # The page is whole and its statement has no WHERE (no filter, one page): the rows
    # are every row of their table (a select of one table, as the lists that use it),
    # and what belongs to them needs no matching to them (to Page.ids). A join would
    # only make more children read than shown, never fewer.
    every_row: bool = False

    def ids(self) -> Subquery:
        """The ids of ``rows`` as a subquery (column ``id``), to join or match their
        children to (no list of bound ids)."""
        if self.source is None:
            raise ValueError("a page made without its statement")
        return self.source.with_only_columns(self.source.selected_columns.id).subquery()


def paginate(session: Session, request: Request, q: ListQuery, stmt: Select[Any],
             model: type[m.Base], columns: Mapping[str, InstrumentedAttribute[Any]],
             base_uri: str = "") -> Page:
    """Apply ``q``'s filters, tags, order and page to ``stmt`` (a select of ``model``, or
    of columns of its table: the page then holds the driver's tuples, :func:`raw_rows`).

    ``columns`` names what may be filtered and sorted on. Raises
    InvalidFilterArgument, InvalidSortKey, InvalidMarker (400).
    """
    for name, values in q.filters.items():
        attr = columns.get(name)
        if attr is None:
            raise exc.InvalidFilterArgument()
        coerced = [_coerce(name, attr, v) for v in values]
        stmt = stmt.where(attr == coerced[0] if len(coerced) == 1 else attr.in_(coerced))
    stmt = _apply_tags(stmt, model, q.tags)

    sort = list(q.sort)
    primary_key = [col.name for col in inspect(model).primary_key]
    for key in (*c.DEFAULT_SORT_KEYS, *primary_key):
        if key in columns and key not in [k for k, _ in sort]:
            sort.append((key, c.DEFAULT_SORT_DIR))
    attrs: list[tuple[InstrumentedAttribute[Any], str]] = []
    for key, direction in sort:
        attr = columns.get(key)
        if attr is None:
            raise exc.InvalidSortKey(key=key)
        attrs.append((attr, direction))

    backwards = q.page_reverse and q.marker is not None
    if q.marker is not None:
        id_attr = getattr(model, "id", None)
        keys = list(dict.fromkeys(attr for attr, _ in attrs))
        # The marker's sort keys as stored (the page's columns may be written for the API).
        found = session.execute(stmt.with_only_columns(*keys).where(id_attr == q.marker)
                                ).first() if id_attr is not None else None
        if found is None:
            raise exc.InvalidMarker(key=q.marker)
        stmt = stmt.where(_after(dict(zip(keys, found, strict=True)), attrs, backwards))

    unordered = stmt
    for attr, direction in attrs:
        ascending = (direction == c.SORT_ASC) != backwards
        expr = _sortable_expr(attr)
        stmt = stmt.order_by(expr.asc() if ascending else expr.desc())
    entity = _selects_entity(stmt, model)
    limited = stmt if q.limit is None else stmt.limit(q.limit + 1)
    rows: list[Any] = (list(session.scalars(limited).unique()) if entity
                       else raw_rows(session.connection(), limited))
    # One row more than the page tells whether the page holds all that the filters match
    # (then its source is the filters alone, for Page.ids).
    whole = q.marker is None and (q.limit is None or len(rows) <= q.limit)
    if q.limit is not None:
        del rows[q.limit:]
        stmt = stmt.limit(q.limit)
    if backwards:
        rows.reverse()
    id_of = attrgetter("id") if entity else itemgetter(stmt.selected_columns.keys().index("id"))
    # Not get_final_froms(): it compiles the whole statement again (a list of a thousand
    # load balancers: 2 ms, a tenth of its time).
    every_row = whole and unordered.whereclause is None
    return Page(rows=rows, links=_links(request, q, rows, id_of, base_uri),
                source=unordered if whole else stmt, every_row=every_row)


def _selects_entity(stmt: Select[Any], model: type[m.Base]) -> bool:
    described = stmt.column_descriptions
    return len(described) == 1 and described[0]["expr"] is model


def raw_rows(conn: Connection, stmt: Executable) -> list[Any]:
    """The rows of ``stmt`` (a select of columns) as the database driver returns them:
    tuples of values not yet read as their columns' types (:func:`column_readers`
    says what is left to do: SQLite's booleans are 0 or 1 and its JSON is text).

    No ORM objects, and no result rows either: a list of a thousand load balancers
    (21 columns) reads its page in a fifth less time (issue 12). The statement is
    still compiled (and cached) and run by SQLAlchemy, on ``conn``.
    """
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def column_readers(stmt: Select[Any], dialect: Dialect) -> dict[str, Callable[[Any], Any]]:
    """What SQLAlchemy does to the driver's value of each selected column of ``stmt``
    (its type's result processor for ``dialect``), by column name, for the columns
    that need it: the reading :func:`raw_rows` leaves to its caller."""
    readers: dict[str, Callable[[Any], Any]] = {}
    for col in stmt.selected_columns:
        read = col.type.dialect_impl(dialect).result_processor(dialect, None)
        if read is not None and col.key is not None:
            readers[col.key] = read
    return readers


def _after(marker: Mapping[InstrumentedAttribute[Any], Any],
           attrs: list[tuple[InstrumentedAttribute[Any], str]],
           backwards: bool) -> ColumnElement[bool]:
    """Rows strictly after the row whose sort keys are ``marker`` (attribute -> value) in
    the sort order (before it if ``backwards``)."""
    criteria = []
    for i, (attr, direction) in enumerate(attrs):
        clause = []
        for prev, _ in attrs[:i]:
            value = marker[prev]
            clause.append(_sortable_expr(prev) == (value if value is not None
                                                   else _null_default(prev)))
        value = marker[attr]
        value = value if value is not None else _null_default(attr)
        greater = (direction == c.SORT_ASC) != backwards
        expr = _sortable_expr(attr)
        clause.append(expr > value if greater else expr < value)
        criteria.append(and_(*clause))
    return or_(*criteria) if criteria else false()


def _apply_tags(stmt: Select[Any], model: type[m.Base], tags: dict[str, list[str]]) -> Select[Any]:
    if not tags:
        return stmt
    if not hasattr(model, "_tags"):
        raise exc.InvalidFilterArgument()
    ident: Any = getattr(model, "id")  # noqa: B009

    def having(tag: str) -> Any:
        return ident.in_(select(m.Tag.resource_id).where(m.Tag.tag == tag))

    for tag in tags.get("tags", []):
        stmt = stmt.where(having(tag))
    if tags.get("tags-any"):
        stmt = stmt.where(ident.in_(
            select(m.Tag.resource_id).where(m.Tag.tag.in_(tags["tags-any"]))))
    not_all = tags.get("not-tags")
    if not_all:
        stmt = stmt.where(~and_(*[having(t) for t in not_all]))
    if tags.get("not-tags-any"):
        stmt = stmt.where(~ident.in_(
            select(m.Tag.resource_id).where(m.Tag.tag.in_(tags["not-tags-any"]))))
    return stmt


def _sqlite_api_timestamp(stored: str | None) -> str | None:
    """SQLite's text of a DateTime as SQLAlchemy writes it, to the microsecond
    (``2017-02-28 00:41:44.123456``), as the API writes it: its first 19 characters,
    the space a ``T``."""
    return None if stored is None else stored[:19].replace(" ", "T")


class _ApiTimestampText(String):
    """The type of :class:`api_timestamp`: text; on SQLite the stored text, made the
    API's by its result processor (:func:`column_readers` finds it)."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object
                         ) -> Callable[[Any], Any] | None:
        """:func:`_sqlite_api_timestamp` on SQLite; nothing elsewhere (the database
        writes it)."""
        return _sqlite_api_timestamp if dialect.name == "sqlite" else None


class api_timestamp(FunctionElement[str]):
    """A timestamp column written as the API writes it
    (:func:`lbaas.api.schemas.common._timestamp`: ``2017-02-28T00:41:44``, to the second,
    truncated; NULL stays NULL), by PostgreSQL (``to_char``), or on SQLite by the type's
    result processor from the stored text (a slice in Python costs a list of a thousand
    rows a third of SQLite's ``replace(substr(...))``, which cost 1.9 ms): a list of a
    thousand rows parses and prints two thousand timestamps fewer in Python (issue 12).
    """

    type = _ApiTimestampText()
    name = "api_timestamp"
    inherit_cache = True


@compiles(api_timestamp)
def _api_timestamp_sqlite(element: api_timestamp, compiler: SQLCompiler, **kw: Any) -> str:
    # The stored text as it is: _ApiTimestampText reads it.
    return compiler.process(*element.clauses, **kw)


@compiles(api_timestamp, "postgresql")
def _api_timestamp_postgresql(element: api_timestamp, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(func.to_char(*element.clauses, 'YYYY-MM-DD"T"HH24:MI:SS'), **kw)


def _links(request: Request, q: ListQuery, rows: list[Any], id_of: Callable[[Any], str],
           base_uri: str) -> list[dict[str, str]]:
    if not rows:
        return []
    path = (base_uri.rstrip("/") + request.url.path) if base_uri else \
        str(request.url.replace(query=""))
    keep = [(k, v) for k, v in q.raw if k in ("sort", "sort_key", "sort_dir", "fields")
            or (k not in _AUX)]
    base = [("limit", str(q.limit))] if q.limit is not None else []
    links = []
    if q.marker is not None:
        prev = [*base, *keep, ("marker", id_of(rows[0])), ("page_reverse", "True")]
        links.append({"href": f"{path}?{urlencode(prev)}", "rel": "previous"})
    if q.limit is not None and len(rows) >= q.limit:
        nxt = [*base, *keep, ("marker", id_of(rows[-1]))]
        links.append({"href": f"{path}?{urlencode(nxt)}", "rel": "next"})
    return links


def select_fields(obj: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """``obj`` reduced to ``fields`` (all of it when ``fields`` is None)."""
    if not fields:
        return obj
    return {k: v for k, v in obj.items() if k in fields}
