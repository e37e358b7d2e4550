"""A real Keystone for tests, benchmarks and client checks, on 127.0.0.1.

Keystone (the ``keystone`` package from PyPI: SQLite, fernet tokens) lives in
its own virtualenv, ``.venv-keystone`` (``scripts/setup --test``; another one
with ``LBAAS_KEYSTONE_PYTHON=/path/to/python``), so its pins never meet
lbaas's. :mod:`lbaas.testing.keystone_server` runs there; this module, in
lbaas's environment, starts it, fills it and hands out tokens.

What :meth:`Keystone.start` leaves in Keystone, besides what
``keystone-manage bootstrap`` makes (user ``admin`` with role ``admin`` on
project ``admin`` and on the system; roles ``admin`` > ``member`` > ``reader``,
each implying the next):

- projects ``lb-one`` and ``lb-two``, and ``service``;
- the roles of Octavia's advanced RBAC (``load-balancer_admin``,
  ``load-balancer_global_observer``, ``load-balancer_member``,
  ``load-balancer_observer``, ``load-balancer_quota_admin``), ``service``,
  and ``no-lb-role`` (a role no rule names: a user needs some role to get a
  project-scoped token);
- for each of these PERSONAS and each project, a user ``<project>-<persona>``
  (``lb-one-member``, ``lb-two-load-balancer_observer``...) holding only that
  role there; the password of every user is in ``info.json``;
- the service user ``lbaas`` (role ``service`` on project ``service``) for
  keystonemiddleware: :meth:`Keystone.authtoken_config` is the
  ``[keystone_authtoken]`` section lbaas needs (and :meth:`Keystone.service_auth_config`
  its ``[service_auth]``, for ``barbican_cert_manager``).

``DIR/clouds.yaml`` has a cloud per user (``lbaas-admin``, ``lb-one-member``,
...) for the openstack CLI and openstacksdk (``OS_CLIENT_CONFIG_FILE``).

From a shell (CI jobs that run the openstack CLI, openstacksdk or tempest)::

    python -m lbaas.testing.keystone start DIR [--endpoint load-balancer=http://127.0.0.1:9876]
    python -m lbaas.testing.keystone token DIR lb-one-member   # prints a token
    python -m lbaas.testing.keystone stop DIR

In pytest, :func:`shared` gives one Keystone to every xdist worker of a run.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from lbaas.testing.process import BackgroundServer, free_port, locked

REPO = Path(__file__).resolve().parents[3]
SERVER = Path(__file__).with_name("keystone_server.py")
PROJECTS = ("lb-one", "lb-two")
LB_ROLES = ("load-balancer_admin", "load-balancer_global_observer", "load-balancer_member",
            "load-balancer_observer", "load-balancer_quota_admin")
NO_ROLE = "no-lb-role"
# Who the RBAC tests act as: the Keystone default roles, Octavia's five, and none.
PERSONAS = ("admin", "member", "reader", *LB_ROLES, NO_ROLE)
SERVICE_USER = "lbaas"

_CONF = """\
[DEFAULT]
debug = false
[database]
connection = sqlite:///{dir}/keystone.sqlite
[token]
provider = fernet
expiration = 86400
[fernet_tokens]
key_repository = {dir}/fernet-keys
[fernet_receipts]
key_repository = {dir}/fernet-keys
[credential]
key_repository = {dir}/credential-keys
[identity]
# bcrypt's cost: 4 keeps a password check at a few ms (tests, not production).
password_hash_rounds = 4
[cache]
# One process: an in-memory cache of token validations, roles and assignments
# (without it, each request took ~0.5 s on a loaded 2-core machine).
enabled = true
backend = dogpile.cache.memory
"""


def python() -> Path | None:
    """The Python of Keystone's virtualenv, or None if there is none."""
    configured = os.environ.get("LBAAS_KEYSTONE_PYTHON")
    path = Path(configured) if configured else REPO / ".venv-keystone" / "bin" / "python"
    return path if path.exists() else None


def available() -> bool:
    """True if a Keystone can be started here."""
    return python() is not None


class Keystone(BackgroundServer):
    """A Keystone in ``directory`` (created), served on 127.0.0.1."""

    log_name = "keystone.log"

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self._tokens: dict[tuple[str, str], str] = {}

    # -- where -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.info['port']}"

    @property
    def auth_url(self) -> str:
        """The identity v3 endpoint (``OS_AUTH_URL``)."""
        return f"{self.url}/v3"

    # -- life ------------------------------------------------------------------
    def start(self, owner: int | None = None, timeout: float = 120.0) -> None:
        """Set up (first time), serve and fill Keystone; return when it answers.

        ``owner``: a PID whose end stops Keystone too (the pytest run).
        Raises RuntimeError with the end of Keystone's log if it does not come up.
        """
        exe = python()
        if exe is None:
            raise RuntimeError("no Keystone virtualenv: run scripts/setup --test "
                               "(or set LBAAS_KEYSTONE_PYTHON)")
        self.dir.mkdir(parents=True, exist_ok=True)
        port = self.info.get("port") or free_port()
        if not (self.dir / "keystone.conf").exists():
            (self.dir / "keystone.conf").write_text(_CONF.format(dir=self.dir))
            (self.dir / "admin-password").write_text(secrets.token_hex(16) + "\n")
            for keys in ("fernet-keys", "credential-keys"):
                (self.dir / keys).mkdir(mode=0o700, exist_ok=True)
        log = (self.dir / "keystone.log").open("ab")
        cmd = [str(exe), str(SERVER), str(self.dir), str(port)]
        if owner:
            cmd += ["--owner", str(owner)]
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.info.update(port=port, pid=proc.pid, admin_password=(
            self.dir / "admin-password").read_text().strip())
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Keystone exited: {self._log_tail()}")
            try:
                if httpx.get(self.auth_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Keystone did not answer in {timeout:.0f} s: "
                                   f"{self._log_tail()}")
            time.sleep(0.1)
        if "users" not in self.info:
            self._populate()
        self._save()

    def _save(self) -> None:
        super()._save()
        self._write_clouds()

    # -- tokens ----------------------------------------------------------------
    def token(self, user: str = "admin", project: str | None = None) -> str:
        """A project-scoped token for ``user`` (``admin`` or ``<project>-<persona>``).

        ``project`` defaults to the user's own (``admin`` for admin). Tokens
        are cached for the life of this object (Keystone's last a day here).
        """
        key = (user, project or "")
        if key not in self._tokens:
            self._tokens[key] = self._issue(user, project)
        return self._tokens[key]

    def _issue(self, user: str, project: str | None = None,
               system: bool = False) -> str:
        if user == "admin":
            password, own = self.info["admin_password"], "admin"
        else:
            entry = self.info["users"][user]
            password, own = entry["password"], entry["project"]
        scope: dict[str, Any] = ({"system": {"all": True}} if system else
                                 {"project": {"name": project or own,
                                              "domain": {"id": "default"}}})
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": scope}}
        r = httpx.post(f"{self.auth_url}/auth/tokens", json=body, timeout=30)
        r.raise_for_status()
        return r.headers["X-Subject-Token"]

    def system_token(self, user: str = "admin") -> str:
        """A system-scoped token (``system: all``) for ``user``."""
        return self._issue(user, system=True)

    # -- filling ---------------------------------------------------------------
    def _api(self) -> httpx.Client:
        return httpx.Client(base_url=self.auth_url, timeout=30,
                            headers={"X-Auth-Token": self._issue("admin", "admin")})

    def _populate(self) -> None:
        users: dict[str, dict[str, str]] = {}
        with self._api() as api:
            roles = {r["name"]: r["id"] for r in api.get("/roles").json()["roles"]}
            for name in (*LB_ROLES, NO_ROLE, "service"):
                if name not in roles:
                    roles[name] = _created(api.post("/roles", json={"role": {"name": name}}),
                                           "role")
            projects = {}
            for name in (*PROJECTS, "service"):
                projects[name] = _created(api.post("/projects", json={"project": {
                    "name": name, "domain_id": "default"}}), "project")
            for project in PROJECTS:
                for persona in PERSONAS:
                    users[f"{project}-{persona}"] = self._user(
                        api, f"{project}-{persona}", project, projects[project],
                        roles[persona])
            users[SERVICE_USER] = self._user(api, SERVICE_USER, "service",
                                             projects["service"], roles["service"])
        self.info.update(users=users, projects=projects, roles=roles)

    @staticmethod
    def _user(api: httpx.Client, name: str, project: str, project_id: str,
              role_id: str) -> dict[str, str]:
        password = secrets.token_hex(12)
        user_id = _created(api.post("/users", json={"user": {
            "name": name, "password": password, "domain_id": "default"}}), "user")
        api.put(f"/projects/{project_id}/users/{user_id}/roles/{role_id}").raise_for_status()
        return {"id": user_id, "password": password, "project": project,
                "project_id": project_id}

    def add_endpoint(self, service_type: str, url: str, name: str | None = None,
                     region: str = "RegionOne") -> None:
        """Register a public endpoint of ``service_type`` (``load-balancer``,
        ``network``) at ``url`` in ``region`` of the catalog, replacing the one of
        that type there (the region is created if new).

        Safe from several threads and processes at once (tempest runs side by side,
        xdist workers): a file lock makes the first caller create the service and
        the others find it. Two services of one type would break clients: tempest
        reads the first one's endpoints only and, finding none in its region, takes
        another region's endpoint.
        """
        names = {"load-balancer": "octavia", "network": "neutron"}
        with locked(self.dir / "catalog.lock"), self._api() as api:
            if api.get(f"/regions/{region}").status_code == 404:
                api.post("/regions", json={"region": {"id": region}}).raise_for_status()
            services = api.get("/services", params={"type": service_type}).json()["services"]
            if services:
                service_id = services[0]["id"]
            else:
                service_id = _created(api.post("/services", json={"service": {
                    "type": service_type,
                    "name": name or names.get(service_type, service_type)}}), "service")
            for old in api.get("/endpoints", params={
                    "service_id": service_id, "interface": "public",
                    "region_id": region}).json()["endpoints"]:
                api.delete(f"/endpoints/{old['id']}").raise_for_status()
            api.post("/endpoints", json={"endpoint": {
                "service_id": service_id, "interface": "public", "url": url,
                "region_id": region}}).raise_for_status()

    # -- for lbaas and clients ----------------------------------------------------
    def authtoken_config(self) -> str:
        """The ``[keystone_authtoken]`` section of an lbaas config using this Keystone."""
        service = self.info["users"][SERVICE_USER]
        return (f"[keystone_authtoken]\n"
                f"www_authenticate_uri = {self.auth_url}\n"
                f"auth_url = {self.auth_url}\n"
                f"auth_type = password\n"
                f"username = {SERVICE_USER}\n"
                f"password = {service['password']}\n"
                f"project_name = service\n"
                f"user_domain_name = Default\n"
                f"project_domain_name = Default\n"
                f"service_token_roles_required = true\n"
                f"interface = public\n"
                f"http_connect_timeout = 5\n"
                f"http_request_max_retries = 0\n")

    def service_auth_config(self) -> str:
        """The ``[service_auth]`` section of an lbaas config using this Keystone: the
        service user ``lbaas``, as which ``barbican_cert_manager``'s worker reads Barbican."""
        service = self.info["users"][SERVICE_USER]
        return (f"[service_auth]\n"
                f"auth_type = password\n"
                f"auth_url = {self.auth_url}\n"
                f"username = {SERVICE_USER}\n"
                f"password = {service['password']}\n"
                f"project_name = service\n"
                f"user_domain_name = Default\n"
                f"project_domain_name = Default\n")

    def openrc(self, user: str = "admin") -> dict[str, str]:
        """``OS_*`` variables for ``user`` (password authentication)."""
        if user == "admin":
            password, project = self.info["admin_password"], "admin"
        else:
            password, project = (self.info["users"][user]["password"],
                                 self.info["users"][user]["project"])
        return {"OS_AUTH_URL": self.auth_url, "OS_AUTH_TYPE": "password",
                "OS_USERNAME": user, "OS_PASSWORD": password, "OS_PROJECT_NAME": project,
                "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
                "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": "RegionOne"}

    def _write_clouds(self) -> None:
        if "users" not in self.info:
            return
        clouds = {}
        for user in ("admin", *self.info["users"]):
            env = self.openrc(user)
            clouds["lbaas-admin" if user == "admin" else user] = {
                "auth_type": "password", "region_name": "RegionOne",
                "identity_api_version": 3,
                "auth": {"auth_url": env["OS_AUTH_URL"], "username": user,
                         "password": env["OS_PASSWORD"],
                         "project_name": env["OS_PROJECT_NAME"],
                         "user_domain_name": "Default", "project_domain_name": "Default"}}
        (self.dir / "clouds.yaml").write_text(json.dumps({"clouds": clouds}, indent=2))


def _created(response: httpx.Response, key: str) -> str:
    response.raise_for_status()
    return str(response.json()[key]["id"])


def shared(directory: Path, owner: int) -> Keystone:
    """The one Keystone in ``directory``, started by the first caller.

    Every xdist worker of a run calls this with the same ``directory``
    (under the run's base temporary directory) and the run's PID as
    ``owner``; a file lock makes the first one start it and the others wait
    and read ``info.json``. Keystone exits with ``owner``; the run also
    stops it at its end (:func:`stop_shared`).
    """
    with locked(directory.with_suffix(".lock")):
        ks = Keystone(directory)
        if not ks.running():
            ks.start(owner=owner)
        return ks


def stop_shared(directory: Path) -> None:
    """Stop the Keystone of :func:`shared` in ``directory`` if one was started."""
    if not (directory / "info.json").exists():
        return
    with locked(directory.with_suffix(".lock")):
        Keystone(directory).stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m lbaas.testing.keystone start|stop|token|env DIR ...``."""
    parser = argparse.ArgumentParser(prog="python -m lbaas.testing.keystone",
                                     description="A throwaway Keystone on 127.0.0.1.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="set up (first time) and serve in the background; "
                                         "prints info.json")
    start.add_argument("dir", type=Path)
    start.add_argument("--endpoint", action="append", default=[], metavar="TYPE=URL",
                       help="add a catalog endpoint, e.g. load-balancer=http://127.0.0.1:9876")
    start.add_argument("--owner", type=int, default=None,
                       help="stop Keystone when this process ends")
    stop = sub.add_parser("stop", help="stop the server")
    stop.add_argument("dir", type=Path)
    token = sub.add_parser("token", help="print a project-scoped token")
    token.add_argument("dir", type=Path)
    token.add_argument("user", nargs="?", default="admin")
    env = sub.add_parser("env", help="print OS_* variables of a user as shell exports")
    env.add_argument("dir", type=Path)
    env.add_argument("user", nargs="?", default="admin")
    args = parser.parse_args(argv)
    ks = Keystone(args.dir.resolve())
    if args.command == "start":
        if not ks.running():
            ks.start(owner=args.owner)
        for spec in args.endpoint:
            service_type, _, url = spec.partition("=")
            ks.add_endpoint(service_type, url)
        print(ks.info_path)
    elif args.command == "stop":
        ks.stop()
    elif args.command == "token":
        print(ks.token(args.user))
    else:
        for key, value in ks.openrc(args.user).items():
            print(f"export {key}={value}")


if __name__ == "__main__":
    main(sys.argv[1:])
