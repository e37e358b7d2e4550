"""The ``lbaas`` CLI against a real ``lbaas serve`` (noop provider).

Every command's happy path, a bad option, an unknown name and the output
formats; commands run in-process through click's runner, talking HTTP.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner, Result

from lbaas import __version__
from lbaas.cli.main import app
from tests.support.serve import Serve


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    s = Serve(tmp_path_factory.mktemp("cli") / "state")
    s.start()
    yield s
    s.stop()


@pytest.fixture
def cli(serve: Serve) -> Iterator[Callable[..., Result]]:
    runner = CliRunner()

    def run(*args: str, ok: bool = True, project: str | None = None) -> Result:
        prefix = ["--os-endpoint", serve.url] + (["--project", project] if project else [])
        result = runner.invoke(app, [*prefix, *args], catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, f"{args}: {result.output}"
        else:
            assert result.exit_code != 0, f"{args} should fail: {result.output}"
        return result

    yield run


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


def test_loadbalancer_lifecycle_and_formats(cli: Callable[..., Result]) -> None:
    created = _json(cli("loadbalancer", "create", "--name", "lber", "--vip-subnet-id",
                        "lb-vip-subnet", "--tag", "web", "--wait", "-f", "json"))
    assert created["provisioning_status"] == "ACTIVE"
    lb_id = created["id"]
    table = cli("loadbalancer", "show", "lber").stdout
    assert "vip_address" in table and lb_id in table
    value = cli("loadbalancer", "show", "lber", "-f", "value", "-c", "name", "-c",
                "provisioning_status").stdout.split()
    assert value == ["lber", "ACTIVE"]
    listed = yaml.safe_load(cli("loadbalancer", "list", "-f", "yaml").stdout)
    assert [lb["name"] for lb in listed] == ["lber"]
    assert "lber" in cli("loadbalancer", "list", "--name", "lber", "-f", "value").stdout
    cli("loadbalancer", "set", "lber", "--description", "hello", "--tag", "x", "--wait")
    shown = _json(cli("loadbalancer", "show", lb_id, "-f", "json"))
    assert shown["description"] == "hello" and shown["tags"] == ["web", "x"]
    cli("loadbalancer", "unset", "lber", "--description", "--tag", "web", "--wait")
    shown = _json(cli("loadbalancer", "show", "lber", "-f", "json", "-c", "description",
                      "-c", "tags"))
    assert shown == {"description": "", "tags": ["x"]}
    stats = _json(cli("loadbalancer", "stats", "lber", "-f", "json"))
    assert set(stats) == {"active_connections", "bytes_in", "bytes_out", "request_errors",
                          "total_connections"}
    tree = _json(cli("loadbalancer", "status", "lber"))
    assert tree["loadbalancer"]["id"] == lb_id
    cli("loadbalancer", "failover", "lber", "--wait")
    cli("loadbalancer", "delete", "lber", "--wait")
    assert _json(cli("loadbalancer", "list", "-f", "json")) == []


def test_the_whole_tree_by_names(cli: Callable[..., Result]) -> None:
    cli("loadbalancer", "create", "--name", "tree", "--wait")
    cli("listener", "create", "tree", "--name", "tree-http", "--protocol", "HTTP",
        "--protocol-port", "80", "--insert-headers", "X-Forwarded-For=true", "--wait")
    cli("pool", "create", "--name", "tree-pool", "--listener", "tree-http", "--protocol",
        "HTTP", "--lb-algorithm", "ROUND_ROBIN", "--session-persistence",
        "type=HTTP_COOKIE", "--wait")
    cli("member", "create", "tree-pool", "--name", "web1", "--address", "127.0.0.10",
        "--protocol-port", "8080", "--wait")
    cli("member", "create", "tree-pool", "--name", "web2", "--address", "127.0.0.11",
        "--protocol-port", "8080", "--weight", "3", "--wait")
    cli("healthmonitor", "create", "tree-pool", "--name", "hm", "--type", "HTTP", "--delay",
        "5", "--timeout", "3", "--max-retries", "2", "--url-path", "/", "--wait")
    cli("l7policy", "create", "tree-http", "--name", "deny", "--action", "REJECT", "--wait")
    cli("l7rule", "create", "deny", "--type", "PATH", "--compare-type", "STARTS_WITH",
        "--value", "/admin", "--wait")

    listener = _json(cli("listener", "show", "tree-http", "-f", "json"))
    assert listener["insert_headers"] == {"X-Forwarded-For": "true"}
    pool = _json(cli("pool", "show", "tree-pool", "-f", "json"))
    assert listener["default_pool_id"] == pool["id"]
    assert pool["session_persistence"]["type"] == "HTTP_COOKIE"
    members = _json(cli("member", "list", "tree-pool", "-f", "json"))
    assert sorted(mb["name"] for mb in members) == ["web1", "web2"]
    cli("member", "set", "tree-pool", "web2", "--weight", "0", "--disable", "--wait")
    web2 = _json(cli("member", "show", "tree-pool", "web2", "-f", "json"))
    assert web2["weight"] == 0 and web2["admin_state_up"] is False
    assert _json(cli("healthmonitor", "show", "hm", "-f", "json"))["delay"] == 5
    cli("healthmonitor", "set", "hm", "--delay", "7", "--wait")
    rules = _json(cli("l7rule", "list", "deny", "-f", "json"))
    assert rules[0]["value"] == "/admin"
    assert "REJECT" in cli("l7policy", "list", "-f", "value").stdout
    for listed in ("listener", "pool", "healthmonitor", "l7policy"):
        assert cli(listed, "list").stdout.strip()
    cli("l7rule", "delete", "deny", rules[0]["id"], "--wait")
    cli("l7policy", "delete", "deny", "--wait")
    cli("healthmonitor", "delete", "hm", "--wait")
    cli("member", "delete", "tree-pool", "web1", "web2", "--wait")
    cli("loadbalancer", "delete", "tree", "--cascade", "--wait")
    assert _json(cli("listener", "list", "-f", "json")) == []


def test_quotas_networks_and_subnets(cli: Callable[..., Result]) -> None:
    cli("quota", "set", "p9", "--loadbalancer", "1")
    assert _json(cli("quota", "show", "p9", "-f", "json"))["loadbalancer"] == 1
    assert "p9" in cli("quota", "list", "-f", "value").stdout
    cli("loadbalancer", "create", "--name", "q1", "--wait", project="p9")
    bad = cli("loadbalancer", "create", "--name", "q2", ok=False, project="p9")
    assert "Quota has been met" in bad.output
    cli("quota", "reset", "p9")
    assert _json(cli("quota", "show", "--default", "-f", "json"))["loadbalancer"] == -1
    cli("loadbalancer", "delete", "q1", "--wait", project="p9")

    cli("network", "create", "--name", "backend-net", "--share")
    cli("subnet", "create", "--name", "backend-subnet", "--network", "backend-net",
        "--subnet-range", "10.77.0.0/24", "--allocation-pool", "start=10.77.0.10,end=10.77.0.20")
    subnet = _json(cli("subnet", "show", "backend-subnet", "-f", "json"))
    assert subnet["gateway_ip"] == "10.77.0.1"
    lb = _json(cli("loadbalancer", "create", "--name", "on-net", "--vip-subnet-id",
                   "backend-subnet", "--wait", "-f", "json"))
    assert lb["vip_address"] == "10.77.0.10"
    in_use = cli("subnet", "delete", "backend-subnet", ok=False)
    assert "One or more ports have an IP allocation" in in_use.output
    cli("loadbalancer", "delete", "on-net", "--wait")
    cli("subnet", "delete", "backend-subnet")
    cli("network", "delete", "backend-net")
    assert "backend-net" not in cli("network", "list", "-f", "value").stdout


def test_errors_are_one_line_and_exit_non_zero(cli: Callable[..., Result],
                                               serve: Serve) -> None:
    unknown = cli("loadbalancer", "show", "nope", ok=False)
    assert unknown.output.strip() == "Error: No load balancer with a name or ID of 'nope' exists."
    bad_option = cli("loadbalancer", "create", "--bogus", ok=False)
    assert "No such option" in bad_option.output and bad_option.exit_code == 2
    refused = cli("listener", "create", "nope", "--protocol", "HTTP", "--protocol-port", "80",
                  ok=False)
    assert refused.output.count("\n") == 1
    api_error = cli("loadbalancer", "create", "--vip-address", "10.1.1.1", ok=False)
    assert api_error.output.strip() == "Error: The IP Address 10.1.1.1 is invalid. (HTTP 400)"
    forbidden = CliRunner().invoke(app, ["--os-endpoint", serve.url, "--project", "p1",
                                         "--roles", "reader", "loadbalancer", "create"])
    assert forbidden.exit_code == 1 and "Policy does not allow" in forbidden.output
    down = CliRunner().invoke(app, ["--os-endpoint", "http://127.0.0.1:9", "loadbalancer",
                                    "list"])
    assert down.exit_code == 1 and "cannot reach the lbaas API" in down.output
    cli("loadbalancer", "create", "--name", "cols", "--wait")
    missing_column = cli("loadbalancer", "show", "cols", "-c", "nope", ok=False)
    assert "No such column(s): nope" in missing_column.output
    missing_column = cli("loadbalancer", "list", "-c", "nope", ok=False)
    assert "No such column(s): nope" in missing_column.output
    cli("loadbalancer", "delete", "cols", "--wait")


def test_help_names_the_octavia_options(cli: Callable[..., Result]) -> None:
    text = cli("pool", "create", "--help").stdout
    for option in ("--lb-algorithm", "--session-persistence", "--listener", "--loadbalancer",
                   "--protocol", "--wait"):
        assert option in text
    text = cli("member", "create", "--help").stdout
    for option in ("--address", "--protocol-port", "--weight", "--subnet-id"):
        assert option in text


def test_tables_are_whole_when_piped(serve: Serve) -> None:
    """Output that is not a terminal gets the whole table: no header or id broken across
    lines at 80 columns; an explicit COLUMNS still sets the width."""
    runner = CliRunner()

    def table(**env: str | None) -> list[str]:
        result = runner.invoke(app, ["--os-endpoint", serve.url, "loadbalancer", "list"],
                               env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout.splitlines()

    created = runner.invoke(app, ["--os-endpoint", serve.url, "loadbalancer", "create",
                                  "--name", "wide", "--wait", "-f", "value", "-c", "id"])
    lb_id = created.stdout.strip()
    try:
        lines = table(COLUMNS=None)
        assert len(lines) == 5, lines  # top, header, rule, one row, bottom
        assert len(lines[0]) > 80
        header = lines[1]
        for column in ("provisioning_status", "operating_status", "vip_address"):
            assert column in header, header
        assert lb_id in lines[3]
        assert len(table(COLUMNS="60")) > 5  # the caller asked for 60 columns
    finally:
        runner.invoke(app, ["--os-endpoint", serve.url, "loadbalancer", "delete", lb_id,
                            "--wait"])


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[
        tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_version_and_help_texts() -> None:
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.strip() == f"lbaas {__version__}"
    for path, command in _commands(app):
        text = runner.invoke(app, [*path, "--help"]).stdout
        assert command.help, path
        for typo in ("policys", " a L7", " a availability"):
            assert typo not in text, (path, text)
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"lbaas {' '.join(path)} {param.opts[0]} has no help text"


def test_providers_flavors_and_availability_zones(cli: Callable[..., Result]) -> None:
    providers = {p["name"]: p["description"]
                 for p in _json(cli("provider", "list", "-f", "json"))}
    assert set(providers) == {"haproxy", "amphora", "noop"}
    assert providers["noop"].endswith("(default)")  # the service runs --provider noop
    assert not providers["haproxy"].endswith("(default)")
    caps = _json(cli("provider", "capability", "list", "noop", "-f", "json"))
    assert {"type": "flavor", "name": "loadbalancer_topology"}.items() <= caps[0].items()
    assert all(row["type"] == "flavor" for row in
               _json(cli("provider", "capability", "list", "noop", "--flavor", "-f", "json")))
    unknown = cli("provider", "capability", "list", "nope", ok=False)
    assert "nope" in unknown.output

    cli("flavorprofile", "create", "--name", "single", "--provider", "noop", "--flavor-data",
        '{"loadbalancer_topology": "SINGLE"}')
    profile = _json(cli("flavorprofile", "show", "single", "-f", "json"))
    assert json.loads(profile["flavor_data"]) == {"loadbalancer_topology": "SINGLE"}
    cli("flavor", "create", "--name", "small", "--flavorprofile", "single", "--description",
        "one HAProxy")
    flavor = _json(cli("flavor", "show", "small", "-f", "json"))
    assert (flavor["flavor_profile_id"], flavor["enabled"]) == (profile["id"], True)
    cli("flavor", "set", "small", "--disable")
    assert _json(cli("flavor", "list", "--disable", "-f", "json"))[0]["name"] == "small"
    assert _json(cli("flavor", "list", "--enable", "-f", "json")) == []
    cli("flavor", "set", "small", "--enable")
    cli("flavor", "unset", "small", "--description")
    assert _json(cli("flavor", "show", "small", "-f", "json"))["description"] == ""
    lb = _json(cli("loadbalancer", "create", "--name", "flavored", "--flavor", "small",
                   "--wait", "-f", "json"))
    assert lb["flavor_id"] == flavor["id"]
    in_use = cli("flavorprofile", "set", "single", "--flavor-data", "{}", ok=False)
    assert "in use" in in_use.output
    cli("loadbalancer", "delete", "flavored", "--wait")
    cli("flavor", "delete", "small")
    cli("flavorprofile", "delete", "single")
    assert _json(cli("flavorprofile", "list", "-f", "json")) == []

    cli("availabilityzoneprofile", "create", "--name", "az-profile", "--provider", "noop",
        "--availability-zone-data", "{}")
    cli("availabilityzone", "create", "--name", "az1", "--availabilityzoneprofile",
        "az-profile", "--description", "rack 1")
    zone = _json(cli("availabilityzone", "show", "az1", "-f", "json"))
    assert (zone["name"], zone["description"], zone["enabled"]) == ("az1", "rack 1", True)
    cli("availabilityzone", "set", "az1", "--description", "rack 2", "--disable")
    listed = _json(cli("availabilityzone", "list", "-f", "json"))
    assert [(z["name"], z["description"], z["enabled"]) for z in listed] == [
        ("az1", "rack 2", False)]
    missing = cli("availabilityzone", "show", "az9", ok=False)
    assert missing.output.strip() == "Error: No availability zone named 'az9' exists."
    cli("availabilityzone", "delete", "az1")
    cli("availabilityzoneprofile", "delete", "az-profile")
    assert _json(cli("availabilityzone", "list", "-f", "json")) == []


def test_amphora_commands_on_a_haproxy_load_balancer(tmp_path: Path) -> None:
    octet = random.randrange(256)  # a VIP pool of this test's own on loopback
    serve = Serve(tmp_path / "state", provider="haproxy", config=(
        f"[networking]\ndefault_subnet_cidr = 127.205.{octet}.0/24\n"
        f"default_subnet_pool_start = 127.205.{octet}.1\n"
        f"default_subnet_pool_end = 127.205.{octet}.254\n"))
    serve.start()
    try:
        runner = CliRunner()

        def cli(*args: str) -> Result:
            result = runner.invoke(app, ["--os-endpoint", serve.url, *args],
                                   catch_exceptions=False)
            assert result.exit_code == 0, f"{args}: {result.output}"
            return result

        lb = _json(cli("loadbalancer", "create", "--name", "amp", "--vip-subnet-id",
                       "lb-vip-subnet", "--wait", "-f", "json"))
        [row] = _json(cli("amphora", "list", "--loadbalancer", "amp", "-f", "json"))
        assert (row["loadbalancer_id"], row["role"], row["status"], row["ha_ip"]) == (
            lb["id"], "STANDALONE", "ALLOCATED", lb["vip_address"])
        assert _json(cli("amphora", "list", "--role", "MASTER", "-f", "json")) == []
        shown = _json(cli("amphora", "show", row["id"], "-f", "json"))
        assert shown["id"] == row["id"] and shown["vrrp_ip"] is None
        assert _json(cli("amphora", "stats", row["id"], "-f", "json")) == []  # no listener
        cli("amphora", "configure", row["id"])
        cli("amphora", "failover", row["id"], "--wait")
        after = _json(cli("loadbalancer", "show", "amp", "-f", "json"))
        assert after["provisioning_status"] == "ACTIVE"
        cli("loadbalancer", "delete", "amp", "--wait")
        assert _json(cli("amphora", "list", "-f", "json")) == []
    finally:
        serve.stop()
