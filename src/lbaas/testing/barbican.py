"""A real Barbican for tests, on 127.0.0.1, authenticating through a real Keystone.

Barbican (the ``barbican`` package from PyPI: SQLite, the simple_crypto
secret store, keystonemiddleware's auth_token) lives in its own virtualenv,
``.venv-barbican`` (``scripts/setup --test``; another one with
``LBAAS_BARBICAN_PYTHON=/path/to/python``), so its pins never meet lbaas's.
:mod:`lbaas.testing.barbican_server` runs there; this module, in lbaas's
environment, writes its configuration and starts it.

Barbican checks tokens with the service user of the Keystone fixture
(:meth:`lbaas.testing.keystone.Keystone.authtoken_config`), and is in
Keystone's catalog as ``key-manager``, so python-barbicanclient and
castellan find it from a Keystone session. Users are the Keystone
fixture's (``lb-one-member`` may store secrets in project ``lb-one``).

From a shell (CI jobs that run the openstack CLI or tempest), with the Keystone
of ``python -m lbaas.testing.keystone start KSDIR``::

    python -m lbaas.testing.barbican start DIR KSDIR   # prints info.json
    python -m lbaas.testing.barbican stop DIR

In pytest, :func:`shared` gives one Barbican to every xdist worker of a run.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lbaas.testing.keystone import Keystone
from lbaas.testing.process import BackgroundServer, free_port, locked

REPO = Path(__file__).resolve().parents[3]
SERVER = Path(__file__).with_name("barbican_server.py")

_CONF = """\
[DEFAULT]
debug = false
host_href = {url}
db_auto_create = true
[database]
connection = sqlite:///{dir}/barbican.sqlite
[secretstore]
enabled_secretstore_plugins = store_crypto
[crypto]
enabled_crypto_plugins = simple_crypto
[simple_crypto_plugin]
kek = {kek}
{authtoken}"""


def python() -> Path | None:
    """The Python of Barbican's virtualenv, or None if there is none."""
    configured = os.environ.get("LBAAS_BARBICAN_PYTHON")
    path = Path(configured) if configured else REPO / ".venv-barbican" / "bin" / "python"
    return path if path.exists() else None


def available() -> bool:
    """True if a Barbican can be started here."""
    return python() is not None


class Barbican(BackgroundServer):
    """A Barbican in ``directory`` (created), served on 127.0.0.1."""

    log_name = "barbican.log"

    @property
    def url(self) -> str:
        """Barbican's endpoint (what the catalog holds; secrets are under ``/v1``)."""
        return f"http://127.0.0.1:{self.info['port']}"

    def start(self, keystone: Keystone, owner: int | None = None,
              timeout: float = 120.0) -> None:
        """Configure (first time) and serve Barbican, registered in ``keystone``'s catalog
        as ``key-manager``; return when it answers.

        ``owner``: a PID whose end stops Barbican too (the test run).
        Raises RuntimeError with the end of Barbican's log if it does not come up.
        """
        exe = python()
        if exe is None:
            raise RuntimeError("no Barbican virtualenv: run scripts/setup --test "
                               "(or set LBAAS_BARBICAN_PYTHON)")
        conf = self.dir / ".barbican" / "barbican.conf"
        port = self.info.get("port") or free_port()
        if not conf.exists():
            conf.parent.mkdir(parents=True, exist_ok=True)
            kek = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
            conf.write_text(_CONF.format(url=f"http://127.0.0.1:{port}", dir=self.dir,
                                         kek=kek, authtoken=keystone.authtoken_config()))
            conf.chmod(0o600)
        log = (self.dir / "barbican.log").open("ab")
        cmd = [str(exe), str(SERVER), str(self.dir), str(port)]
        if owner:
            cmd += ["--owner", str(owner)]
        env = {**os.environ, "HOME": str(self.dir)}
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.info.update(port=port, pid=proc.pid)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"Barbican exited: {self._log_tail()}")
            try:
                if httpx.get(f"{self.url}/", timeout=2).status_code in (200, 300):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Barbican did not answer in {timeout:.0f} s: "
                                   f"{self._log_tail()}")
            time.sleep(0.1)
        keystone.add_endpoint("key-manager", self.url, name="barbican")
        self._save()


def shared(directory: Path, keystone: Keystone, owner: int) -> Barbican:
    """The one Barbican in ``directory``, started by the first caller (as
    :func:`lbaas.testing.keystone.shared`): every xdist worker of a run calls this;
    Barbican exits with ``owner``; the run also stops it (:func:`stop_shared`)."""
    with locked(directory.with_suffix(".lock")):
        directory.mkdir(parents=True, exist_ok=True)
        b = Barbican(directory)
        if not b.running():
            b.start(keystone, owner=owner)
        return b


def stop_shared(directory: Path) -> None:
    """Stop the Barbican of :func:`shared` in ``directory`` if one was started."""
    if not (directory / "info.json").exists():
        return
    with locked(directory.with_suffix(".lock")):
        Barbican(directory).stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m lbaas.testing.barbican start|stop DIR [KEYSTONE_DIR]``."""
    parser = argparse.ArgumentParser(prog="python -m lbaas.testing.barbican",
                                     description="A throwaway Barbican on 127.0.0.1.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="configure (first time) and serve in the "
                                         "background on a running Keystone; prints info.json")
    start.add_argument("dir", type=Path)
    start.add_argument("keystone_dir", type=Path,
                       help="the directory of python -m lbaas.testing.keystone start")
    start.add_argument("--owner", type=int, default=None,
                       help="stop Barbican when this process ends")
    stop = sub.add_parser("stop", help="stop the server")
    stop.add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    b = Barbican(args.dir.resolve())
    if args.command == "start":
        args.dir.mkdir(parents=True, exist_ok=True)
        if not b.running():
            b.start(Keystone(args.keystone_dir.resolve()), owner=args.owner)
        print(b.info_path)
    else:
        b.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
