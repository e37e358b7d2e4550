"""The CLI's HTTP client: requests, Octavia error bodies, names or ids, waiting.

The CLI talks to the API over HTTP like any Octavia client; it never imports
the service. Who it is (a Keystone token, an API key, or noauth headers)
comes from :mod:`lbaas.cli.auth`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_ENDPOINT = "http://127.0.0.1:9876"
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")


class CliError(Exception):
    """A failure to show the user in one line; exit status 1. ``status``: the API's HTTP
    status, when the API answered."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Resource:
    """Where a resource lives in the API and what it is called.

    ``path`` may hold ``{parent}`` (members under a pool, rules under a
    policy). ``key``/``collection`` are the JSON envelope names, ``links``
    the name of a list's pagination links when it is not
    ``<collection>_links``. ``id_key`` is the attribute that names an object
    in its URL (``name`` for availability zones). ``title`` and ``plural``
    are what messages and help call it ("L7 policy", "L7 policies").
    """

    name: str
    key: str
    collection: str
    path: str
    parent: Resource | None = None
    title: str = ""
    plural: str = ""
    id_key: str = "id"
    links: str = ""

    def url(self, parent_id: str | None = None) -> str:
        return self.path.format(parent=parent_id) if parent_id else self.path

    @property
    def label(self) -> str:
        return self.title or self.name

    @property
    def labels(self) -> str:
        """The plural: "load balancers", "L7 policies"."""
        return self.plural or f"{self.label}s"

    @property
    def a_label(self) -> str:
        """With its indefinite article: "a pool", "an L7 rule", "an availability zone"."""
        spoken_vowel = self.label[0].lower() in "aeiou" or self.label.startswith("L7")
        return f"{'an' if spoken_vowel else 'a'} {self.label}"


class Client:
    """Requests against one lbaas (or Octavia) endpoint as one identity."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        """``headers`` say who is asking (:func:`lbaas.cli.auth.resolve`)."""
        self.endpoint = endpoint.rstrip("/")
        self._http = httpx.Client(base_url=self.endpoint, timeout=timeout, headers={
            "Accept": "application/json", **(headers or {})})

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, path: str, *, json: Any = None,
                params: Any = None) -> Any:
        """Send a request; return the decoded body (None for 204/202 without body).

        Raises CliError with the API's faultstring on any 4xx/5xx, and with a
        hint when the server cannot be reached.
        """
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.ConnectError:
            raise CliError(f"cannot reach the lbaas API at {self.endpoint} (is `lbaas serve` "
                           "running? set --os-endpoint or LBAAS_URL)") from None
        except httpx.HTTPError as e:
            raise CliError(f"request to {self.endpoint}{path} failed: {e}") from None
        if response.status_code >= 400:
            raise CliError(_fault(response), response.status_code)
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, params: Any = None) -> Any:
        return self.request("GET", path, params=params)

    def get_bytes(self, path: str, accept: str) -> bytes:
        """The raw body of a GET (a secret's payload); CliError as :meth:`request`."""
        try:
            response = self._http.get(path, headers={"Accept": accept})
        except httpx.HTTPError as e:
            raise CliError(f"request to {self.endpoint}{path} failed: {e}") from None
        if response.status_code >= 400:
            raise CliError(_fault(response), response.status_code)
        return response.content

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def put(self, path: str, body: Any = None) -> Any:
        return self.request("PUT", path, json=body)

    def delete(self, path: str, params: Any = None) -> Any:
        return self.request("DELETE", path, params=params)

    # -- resources -----------------------------------------------------------
    def list(self, res: Resource, parent_id: str | None = None,
             params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every object of ``res`` (following pagination links)."""
        items: list[dict[str, Any]] = []
        url: str | None = res.url(parent_id)
        query = dict(params or {})
        while url:
            body = self.get(url, params=query)
            items.extend(body[res.collection])
            nxt = [link["href"] for link in body.get(res.links or f"{res.collection}_links", [])
                   if link.get("rel") == "next"]
            url = nxt[0] if nxt else None
            query = {}
        return items

    def show(self, res: Resource, obj_id: str, parent_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = self.get(f"{res.url(parent_id)}/{obj_id}")[res.key]
        return body

    def find(self, res: Resource, name_or_id: str, parent_id: str | None = None) -> str:
        """The id of the object called ``name_or_id`` (an id, or a unique name).

        Raises CliError if there is none or the name is ambiguous.
        """
        if res.id_key == "name":  # named in its URL: the name is the id
            try:
                self.show(res, name_or_id, parent_id)
            except CliError as e:
                if e.status == 404:
                    raise CliError(f"No {res.label} named '{name_or_id}' exists.") from None
                raise
            return name_or_id
        if _is_uuid(name_or_id):
            try:
                return str(self.show(res, name_or_id, parent_id)["id"])
            except CliError:
                pass
        matches = [o for o in self.list(res, parent_id, {"name": name_or_id})
                   if o.get("name") == name_or_id]
        if not matches:
            raise CliError(f"No {res.label} with a name or ID of '{name_or_id}' exists.")
        if len(matches) > 1:
            raise CliError(f"More than one {res.label} exists with the name '{name_or_id}'.")
        return str(matches[0]["id"])


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _fault(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text.strip()[:200]}"
    if isinstance(body, dict):
        for key in ("faultstring", "message", "detail", "description"):
            if isinstance(body.get(key), str):
                return f"{body[key]} (HTTP {response.status_code})"
    return f"HTTP {response.status_code}: {body}"


def wait_for(fetch: Callable[[], dict[str, Any] | None], timeout: float,
             progress: Callable[[str], None] | None = None,
             interval: float = 0.25) -> dict[str, Any] | None:
    """Poll ``fetch`` until the object is not PENDING_* (or gone: None).

    Returns the last object (None if it was deleted). Raises CliError on
    timeout (seconds) or when the object ends in ERROR (with its reason).
    """
    deadline = time.monotonic() + timeout
    while True:
        obj = fetch()
        status = None if obj is None else obj.get("provisioning_status")
        if progress:
            progress(status or "DELETED")
        if obj is None or status not in PENDING:
            if status == "ERROR":
                reason = obj.get("provisioning_status_reason") if obj else None
                raise CliError("provisioning failed: ERROR" + (f": {reason}" if reason else ""))
            return obj
        if time.monotonic() > deadline:
            raise CliError(f"timed out after {timeout:.0f} s waiting; still {status}")
        time.sleep(interval)
