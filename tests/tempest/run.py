"""Octavia's own test suite, octavia-tempest-plugin, run unmodified against lbaas.

``python -m tests.tempest.run [RUN ...] [--concurrency N] [--work DIR]``

One real Keystone (:mod:`lbaas.testing.keystone`) serves every run; each run
starts its own ``lbaas serve`` (noop provider, ``[controller_worker]
network_driver = noop``, ``auth_strategy = keystone``) on 127.0.0.1, puts it in
Keystone's catalog as ``load-balancer`` and ``network`` (lbaas answers
``/v2.0/`` as Neutron) in a region of its own, so runs can go side by side,
writes a tempest workspace from :file:`tempest.conf` (a ``string.Template``) and
runs ``tempest run`` of :data:`RUNS`' regex from tempest's own virtualenv,
``.venv-tempest`` (``scripts/setup --test``; another one with
``LBAAS_TEMPEST_VENV``).

:file:`skip-list.txt` names, by regex, the tests that are not run, each with
the lbaas feature it waits for (``regex  # reason``, stestr's exclude-list
format). The runner prints, per run, passed / skipped by the suite itself /
excluded by the skip list (grouped by reason) / failed and the wall time, and
exits 1 if a test failed or a skip-list entry matched nothing (a stale entry).

To add tests: a :class:`Run` in :data:`RUNS` with its regex, the tempest
options it needs (``options``), lbaas options (``lbaas_config``), whether it
needs Barbican (``barbican``: one :mod:`lbaas.testing.barbican` per
invocation, from ``.venv-barbican``), and skip-list lines for what cannot pass
yet.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import re
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from lbaas.testing.barbican import Barbican
from lbaas.testing.keystone import Keystone
from tests.support.serve import Serve

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TEMPLATE = HERE / "tempest.conf"
SKIP_LIST = HERE / "skip-list.txt"
ADVANCED_POLICY = REPO / "etc" / "policy" / "advanced-rbac-policy.yaml"

API = r"^octavia_tempest_plugin\.tests\.api\.v2\."
# The API tests of TLS-terminated listeners (api/v2 has no pool TLS test: those are
# scenario tests, with servers).
API_TLS = API + r"test_listener\.ListenerAPITest\.test_.*terminated_https"
# Scenario tests that need no compute (no servers behind the members).
SCENARIO = (r"^octavia_tempest_plugin\.tests\.scenario\.v2\."
            r"test_(load_balancer|listener|pool|member|healthmonitor|l7policy|l7rule)\.")

# What lbaas serves, written into both configs: tempest compares each provider's
# description with the API's (a DictOpt: no comma, no colon in a description).
PROVIDERS = {"noop": "Records objects without realising them.",
             "haproxy": "HAProxy processes on this host.",
             "amphora": "Alias of haproxy for scripts written for Octavia."}


@dataclass(frozen=True)
class Run:
    """One ``tempest run``: which tests, with which RBAC type and lbaas policy."""

    regex: str
    rbac_test_type: str = "keystone_default_roles"
    policy_file: Path | None = None
    # Extra tempest options: {section: {option: value}}.
    options: dict[str, dict[str, str]] = field(default_factory=dict)
    # Extra lbaas config (INI text appended to the generated one; a later option wins).
    lbaas_config: str = ""
    # Barbican (one per invocation, in the catalog as key-manager) and lbaas reading
    # certificates from it (barbican_cert_manager as the service user, [service_auth]).
    barbican: bool = False


RUNS: dict[str, Run] = {
    # Octavia's default policy is the Keystone default roles (enforce_new_defaults).
    "api": Run(API),
    "api-advanced": Run(API, rbac_test_type="advanced", policy_file=ADVANCED_POLICY),
    "scenario": Run(SCENARIO),
    # The TLS API tests with real certificates: the plugin stores PKCS12 secrets in
    # Barbican as os_roles_lb_member (Keystone default roles: Barbican's default policy
    # refuses load-balancer_member) and expects terminated HTTPS listeners to go ONLINE,
    # so not noop: HAProxy processes serve them on VIPs of lbaas's own loopback subnet.
    "api-barbican": Run(
        API_TLS, barbican=True,
        options={"service_available": {"barbican": "true",
                                       # test_with_noop = false also requires these
                                       # (skip_checks); no test here uses them.
                                       "nova": "true", "glance": "true"},
                 # test_with_ipv6: the plugin then reads test_IPv6_subnet_override, an
                 # option it never registered (NoSuchOptError in resource_setup).
                 # test_subnet_override: it keeps show_subnet's {"subnet": ...} unwrapped
                 # (KeyError 'id'); the VIP comes from test_network_override's subnet.
                 "load_balancer": {"test_with_noop": "false", "provider": "haproxy",
                                   "test_with_ipv6": "false", "test_subnet_override": ""},
                 "loadbalancer-feature-enabled": {"terminated_tls_enabled": "true"}},
        lbaas_config=("[controller_worker]\nnetwork_driver = local\n"
                      "[networking]\ndefault_subnet_cidr = 127.61.0.0/16\n"
                      "default_subnet_pool_start = 127.61.0.1\n"
                      "default_subnet_pool_end = 127.61.255.254\n")),
}


def tempest_bin() -> Path:
    venv = Path(os.environ.get("LBAAS_TEMPEST_VENV", REPO / ".venv-tempest"))
    return venv / "bin" / "tempest"


# -- the skip list ------------------------------------------------------------
@dataclass(frozen=True)
class SkipEntry:
    regex: re.Pattern[str]
    reason: str


def read_skip_list(path: Path = SKIP_LIST) -> list[SkipEntry]:
    """Entries ``regex  # reason``; blank lines and lines starting with ``#`` skipped."""
    entries = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        regex, _, reason = text.partition("#")
        if not reason.strip():
            raise ValueError(f"{path.name}: no reason for {regex.strip()!r}")
        entries.append(SkipEntry(re.compile(regex.strip()), reason.strip()))
    return entries


# -- results -------------------------------------------------------------------
# stestr's console lines: "{0} <id> [0.5s] ... ok", "... SKIPPED: <reason>", "... FAILED".
RESULT = re.compile(r"^\{\d+\} (?P<id>.+?)(?: \[[\d.]+s\])? \.\.\. "
                    r"(?P<status>ok|FAILED|SKIPPED: (?P<reason>.*))\s*$")


@dataclass
class Outcome:
    name: str
    passed: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    excluded: Counter[str] = field(default_factory=Counter)
    stale: list[str] = field(default_factory=list)
    wall: float = 0.0
    returncode: int = 0

    def ok(self) -> bool:
        return (not self.failed and not self.stale and self.returncode == 0
                and self.passed > 0)

    def report(self) -> str:
        lines = [f"tempest {self.name}: {self.passed} passed, "
                 f"{sum(self.skipped.values())} skipped by the suite, "
                 f"{sum(self.excluded.values())} excluded by skip-list.txt, "
                 f"{len(self.failed)} failed, in {self.wall:.0f} s"]
        lines += [f"  excluded {n:4d}: {reason}" for reason, n in self.excluded.most_common()]
        lines += [f"  skipped  {n:4d}: {reason}" for reason, n in self.skipped.most_common()]
        lines += [f"  FAILED: {test}" for test in self.failed]
        lines += [f"  STALE skip-list entry (matches no test): {r}" for r in self.stale]
        if self.returncode and not self.failed:
            lines.append(f"  tempest exited {self.returncode}")
        return "\n".join(lines)


def parse_console(text: str, outcome: Outcome) -> None:
    for line in text.splitlines():
        m = RESULT.match(line)
        if not m:
            continue
        status = m["status"]
        if status == "ok":
            outcome.passed += 1
        elif status == "FAILED":
            outcome.failed.append(m["id"])
        else:
            outcome.skipped[m["reason"].strip()] += 1


# -- one run -------------------------------------------------------------------
def lbaas_config(keystone: Keystone, run: Run) -> str:
    cert_manager = "barbican_cert_manager" if run.barbican else "noop_cert_manager"
    text = ("[api_settings]\nauth_strategy = keystone\n"
            f"enabled_provider_drivers = {json.dumps(PROVIDERS)}\n"
            "default_provider_driver = noop\n"
            "[controller_worker]\nnetwork_driver = noop\npoll_interval = 0.2\n"
            f"[certificates]\ncert_manager = {cert_manager}\n")
    if run.barbican:
        text += keystone.service_auth_config()
    if run.policy_file:
        text += f"[oslo_policy]\npolicy_file = {run.policy_file}\n"
    return text + keystone.authtoken_config() + run.lbaas_config


def write_tempest_conf(path: Path, workspace: Path, keystone: Keystone, run: Run,
                       region: str, network: dict[str, str]) -> None:
    text = string.Template(TEMPLATE.read_text()).substitute(
        workspace=workspace, admin_password=keystone.info["admin_password"],
        auth_url=keystone.auth_url, rbac_test_type=run.rbac_test_type,
        network_id=network["network_id"], subnet_id=network["subnet_id"],
        providers=",".join(f"{k}:{v}" for k, v in PROVIDERS.items()))
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # RBAC_test_type
    parser.read_string(text)
    parser.set("identity", "region", region)
    for section, options in run.options.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            parser.set(section, key, value)
    with path.open("w") as f:
        parser.write(f)


def lbaas_network(serve: Serve, token: str) -> dict[str, str]:
    """lbaas's default network and subnet (tempest's test_*_override)."""
    r = httpx.get(f"{serve.url}/v2.0/subnets", headers={"X-Auth-Token": token}, timeout=30)
    r.raise_for_status()
    subnet = r.json()["subnets"][0]
    return {"network_id": subnet["network_id"], "subnet_id": subnet["id"]}


def list_tests(tempest: Path, workspace: Path, conf: Path, regex: str) -> list[str]:
    out = subprocess.run([str(tempest), "run", "--config-file", str(conf), "--list-tests",
                          "--regex", regex], cwd=workspace, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"tempest run --list-tests: {out.stdout[-2000:]}{out.stderr[-2000:]}")
    return [line.strip() for line in out.stdout.splitlines()
            if line.startswith("octavia_tempest_plugin.")]


def run_one(name: str, run: Run, keystone: Keystone, work: Path, concurrency: int,
            regex: str | None, region: str) -> Outcome:
    """Serve lbaas for ``run``, run tempest against it, return what happened."""
    outcome = Outcome(name)
    began = time.monotonic()
    workspace = work / name
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    serve = Serve(workspace / "lbaas-state", config=lbaas_config(keystone, run))
    serve.start(timeout=300)  # three at once on a loaded 2-core machine took over 60 s
    try:
        keystone.add_endpoint("load-balancer", serve.url, region=region)
        keystone.add_endpoint("network", serve.url, region=region)
        network = lbaas_network(serve, keystone.token())
        conf = workspace / "etc" / "tempest.conf"
        conf.parent.mkdir()
        write_tempest_conf(conf, workspace, keystone, run, region, network)
        tempest = tempest_bin()
        (workspace / ".stestr.conf").write_text(_stestr_conf(tempest))
        subprocess.run([str(tempest.parent / "stestr"), "init"], cwd=workspace, check=True,
                       stdout=subprocess.DEVNULL)
        selected = regex or run.regex
        tests = list_tests(tempest, workspace, conf, selected)
        entries = read_skip_list()
        for entry in entries:
            hits = [t for t in tests if entry.regex.search(t)]
            outcome.excluded[entry.reason] += len(hits)
        if regex is None:
            outcome.stale = [e.regex.pattern for e in entries
                             if not any(e.regex.search(t) for t in tests)
                             and _applies(e, name)]
        excluded = {t for t in tests if any(e.regex.search(t) for e in entries)}
        outcome.excluded = Counter({r: n for r, n in outcome.excluded.items() if n})
        # A test matched by several entries counts once, under its first reason.
        if sum(outcome.excluded.values()) != len(excluded):
            outcome.excluded = Counter(
                next(e.reason for e in entries if e.regex.search(t)) for t in excluded)
        console = workspace / "console.log"
        with console.open("w") as log:
            # Its own process group: an interrupted run stops every stestr worker.
            proc = subprocess.Popen(
                [str(tempest), "run", "--config-file", str(conf), "--regex", selected,
                 "--exclude-list", str(SKIP_LIST), "--concurrency", str(concurrency)],
                cwd=workspace, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            RUNNING.add(proc)
            try:
                outcome.returncode = proc.wait()
            finally:
                RUNNING.discard(proc)
                _stop(proc)
        parse_console(console.read_text(errors="replace"), outcome)
    finally:
        serve.stop()
    outcome.wall = time.monotonic() - began
    return outcome


# The tempest processes running now (one per run): SIGTERM stops them all.
RUNNING: set[subprocess.Popen[bytes]] = set()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop ``proc``'s process group (tempest and its stestr workers) if it runs."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()


def _terminate(*_: object) -> None:
    """SIGTERM: stop every tempest run; each run then stops its lbaas, and the main
    thread Keystone."""
    for proc in list(RUNNING):
        _stop(proc)
    raise SystemExit(143)


def _applies(entry: SkipEntry, run_name: str) -> bool:
    """Whether ``entry`` is meant for this run's tests (api entries name tests.api)."""
    pattern = entry.regex.pattern
    if "scenario" in pattern:
        return run_name == "scenario"
    if "tests.api" in pattern or "tests\\.api" in pattern:
        return run_name.startswith("api")
    return True


def _stestr_conf(tempest: Path) -> str:
    """tempest's own .stestr.conf (what `tempest init` writes)."""
    python = tempest.parent / "python"
    top = subprocess.run([str(python), "-c", "import os, tempest; "
                          "print(os.path.dirname(os.path.dirname(tempest.__file__)))"],
                         capture_output=True, text=True, check=True).stdout.strip()
    return (f"[DEFAULT]\ntest_path={top}/tempest/test_discover\ntop_dir={top}\n"
            "group_regex=([^\\.]*\\.)*\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.tempest.run",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="RUN",
                        help=f"which runs: {', '.join(RUNS)} (default: all)")
    parser.add_argument("--concurrency", type=int, default=2,
                        help="tempest workers per run (default 2)")
    parser.add_argument("--parallel", action="store_true",
                        help="start the runs side by side instead of one after another "
                             "(each prints its report when it ends)")
    parser.add_argument("--regex", default=None,
                        help="only the tests matching this (instead of the run's own)")
    parser.add_argument("--work", type=Path, default=None,
                        help="directory for Keystone and the workspaces (default: a "
                             "temporary one, kept if a run fails)")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: tempest, lbaas and Keystone are stopped.
    signal.signal(signal.SIGTERM, _terminate)
    unknown = set(args.runs) - set(RUNS)
    if unknown:
        parser.error(f"unknown run(s) {', '.join(sorted(unknown))}: choose from {', '.join(RUNS)}")
    if not tempest_bin().exists():
        print(f"no tempest at {tempest_bin()}: run scripts/setup --test", file=sys.stderr)
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="lbaas-tempest-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    keystone = Keystone(work / "keystone")
    keystone.start(owner=os.getpid())
    names = args.runs or list(RUNS)
    barbican = None
    outcomes: list[Outcome] = []
    try:
        if any(RUNS[n].barbican for n in names):
            barbican = Barbican(work / "barbican")
            barbican.start(keystone, owner=os.getpid())  # the catalog's key-manager
        jobs = [(name, RUNS[name], f"Region{i}") for i, name in enumerate(names, 1)]
        if args.parallel:
            results: dict[str, Outcome] = {}
            printing = threading.Lock()

            def one(n: str, r: Run, g: str) -> None:
                """Run ``n`` and print its report, in one block, as soon as it ends."""
                try:
                    results[n] = run_one(n, r, keystone, work, args.concurrency,
                                         args.regex, g)
                    report = results[n].report()
                except Exception:  # reported; the run counts as failed (no outcome)
                    report = f"tempest {n}: did not run\n{traceback.format_exc()}"
                with printing:
                    print(report, flush=True)

            threads = [threading.Thread(target=one, args=job) for job in jobs]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            outcomes = [results[n] for n, _, _ in jobs if n in results]
        else:
            for n, r, g in jobs:
                outcomes.append(run_one(n, r, keystone, work, args.concurrency, args.regex, g))
                print(outcomes[-1].report(), flush=True)
    finally:
        if barbican is not None:
            barbican.stop()
        keystone.stop()
    ok = len(outcomes) == len(args.runs or RUNS) and all(o.ok() for o in outcomes)
    print(f"tempest: {'all runs passed' if ok else 'FAILED'} in "
          f"{time.monotonic() - began:.0f} s (logs: {work})")
    if ok and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
