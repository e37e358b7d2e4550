"""Rendering: golden texts, HAProxy's own check, and injection safety of free-form fields."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbaas.dataplane import render, runtime
from lbaas.dataplane import spec as s
from lbaas.dataplane.errors import RenderError
from tests.support.specs import http_lb, member, with_pool
from tests.unit.dataplane.examples import EXAMPLES, http_everything

GOLDEN = Path(__file__).with_name("golden")
PATHS = render.ConfigPaths(ping_command="/var/lib/lbaas/lb/ping-check")
TUNING = render.Tuning(max_connections=100000)
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
needs_haproxy = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy not installed")


def haproxy_check(text: str, tmp_path: Path,
                  lb: s.LoadBalancerSpec | None = None) -> subprocess.CompletedProcess[str]:
    """``haproxy -c`` in a load balancer directory (as the agent runs it), with
    ``lb``'s TLS files in it."""
    if lb is not None and lb.tls_files:
        (tmp_path / render.CERTS_DIR).mkdir(exist_ok=True)
        for name, data in render.tls_files(lb).items():
            (tmp_path / render.CERTS_DIR / name).write_bytes(data)
    (tmp_path / "haproxy.cfg").write_text(text)
    (tmp_path / "servers.state").write_text(runtime.EMPTY_SERVER_STATE)
    return subprocess.run([HAPROXY, "-c", "-f", "haproxy.cfg"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden(name: str) -> None:
    expected = (GOLDEN / f"{name}.cfg").read_text()
    assert render.render(EXAMPLES[name](), PATHS, TUNING) == expected


@needs_haproxy
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_golden_passes_haproxy_check(name: str, tmp_path: Path) -> None:
    result = haproxy_check((GOLDEN / f"{name}.cfg").read_text(), tmp_path, EXAMPLES[name]())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr


def test_render_is_pure() -> None:
    lb = http_everything()
    assert render.render(lb, PATHS, TUNING) == render.render(lb, PATHS, TUNING)


def test_global_maxconn_sums_listeners_within_the_ceiling() -> None:
    view = render.build_view(http_everything(), PATHS, TUNING)
    assert view.maxconn == 5000 + 50000
    capped = render.build_view(http_everything(), PATHS, render.Tuning(max_connections=4000))
    assert capped.maxconn == 4000


@pytest.mark.parametrize(("codes", "regex"), [
    ("200", "^(200)$"), ("200,202", "^(200|202)$"), ("200, 404", "^(200|404)$"),
    ("200-203", "^(200|201|202|203)$"),
])
def test_expected_codes(codes: str, regex: str) -> None:
    assert render.expected_codes_regex(codes) == regex


@pytest.mark.parametrize("codes", ["", "2000", "200-", "abc", "200;drop", "300-200", "099"])
def test_bad_expected_codes_are_refused(codes: str) -> None:
    with pytest.raises(RenderError):
        render.expected_codes_regex(codes)


# -- HAProxy's word grammar (configuration manual 2.2), to read rendered lines back --


def hap_words(line: str) -> list[str]:
    """Split one configuration line into words as HAProxy's parser does."""
    words: list[str] = []
    cur: list[str] = []
    started = False
    i, quote = 0, None
    while i < len(line):
        ch = line[i]
        if quote == "'":
            if ch == "'":
                quote = None
            else:
                cur.append(ch)
        elif quote == '"':
            if ch == "\\" and i + 1 < len(line):
                i += 1
                cur.append(line[i])
            elif ch == '"':
                quote = None
            else:
                cur.append(ch)
        elif ch in " \t":
            if started:
                words.append("".join(cur))
                cur, started = [], False
        elif ch == "#":
            break
        elif ch == "\\" and i + 1 < len(line):
            i += 1
            cur.append(line[i])
            started = True
        elif ch in "'\"":
            quote, started = ch, True
        else:
            cur.append(ch)
            started = True
        i += 1
    assert quote is None, f"unterminated quote in {line!r}"
    if started:
        words.append("".join(cur))
    return words


def hap_args(word: str) -> str:
    """The single argument inside ``fetch(...)`` of a word, read back (second level)."""
    inner = word[word.index("(") + 1:-1]
    parts = hap_words(inner.replace(" ", "\\ "))
    assert len(parts) == 1
    return parts[0]


@pytest.mark.parametrize("value", [
    "plain", "two words", "has#hash", "it's", 'say "hi"', "back\\slash", "$HOME", "%[src]",
    "a,b)c", "'", '"', "\\", "#", " lead", "-f", "--",
])
def test_cfg_word_reads_back_as_one_word(value: str) -> None:
    word = render.cfg_word(value)
    assert hap_words(f"acl x path -m str -- {word}") == ["acl", "x", "path", "-m", "str", "--",
                                                          value]


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "nul\x00", "bell\x07", "del\x7f", ""])
def test_cfg_word_refuses_what_cannot_be_one_line(value: str) -> None:
    with pytest.raises(RenderError):
        render.cfg_word(value)


@pytest.mark.parametrize("value", ["JSESSIONID", "a#b", "it's", "a,b", "x)y", 'q"q', "b\\s"])
def test_sample_arg_reads_back(value: str) -> None:
    word = hap_words(render.sample_expr("req.cook", value))[0]
    assert hap_args(word) == value


# -- free-form fields: refused, or carried inert --------------------------------

NASTY = st.text(alphabet=st.sampled_from(list("aZ09/._-#'\"\\ $%;,()\n\r\t{}[]?=&~|")),
                min_size=1, max_size=24)


def _lb_with(field: str, value: str) -> s.LoadBalancerSpec:
    lb = http_everything()
    web, api = lb.pools
    http, prom = lb.listeners
    pol = list(http.l7policies)
    if field == "url_path":
        web = dataclasses.replace(web, health_monitor=dataclasses.replace(
            web.health_monitor, url_path=value))  # type: ignore[arg-type]
    elif field == "domain_name":
        web = dataclasses.replace(web, health_monitor=dataclasses.replace(
            web.health_monitor, domain_name=value))  # type: ignore[arg-type]
    elif field == "expected_codes":
        web = dataclasses.replace(web, health_monitor=dataclasses.replace(
            web.health_monitor, expected_codes=value))  # type: ignore[arg-type]
    elif field == "cookie_name":
        web = dataclasses.replace(web, session_persistence=s.SessionPersistenceSpec(
            type="APP_COOKIE", cookie_name=value))
    elif field in ("rule_value", "rule_key"):
        rule = pol[1].rules[0]
        rule = dataclasses.replace(rule, **{field.removeprefix("rule_"): value})
        pol[1] = dataclasses.replace(pol[1], rules=(rule,))
    elif field == "redirect_url":
        pol[2] = dataclasses.replace(pol[2], redirect_url=value)
    elif field == "redirect_prefix":
        pol[3] = dataclasses.replace(pol[3], redirect_prefix=value)
    http = dataclasses.replace(http, l7policies=tuple(pol))
    return dataclasses.replace(lb, pools=(web, api), listeners=(http, prom))


FIELDS = ("url_path", "domain_name", "expected_codes", "cookie_name", "rule_value", "rule_key",
          "redirect_url", "redirect_prefix")


def _structure(text: str) -> list[tuple[str, ...]]:
    """Per line: the keyword words (first two) and the number of words."""
    out = []
    for line in text.splitlines():
        words = hap_words(line)
        out.append((*words[:2], str(len(words))))
    return out


def _check_inert(field: str, value: str, tmp_path: Path | None) -> None:
    baseline = render.render(http_everything(), PATHS, TUNING)
    try:
        text = render.render(_lb_with(field, value), PATHS, TUNING)
    except RenderError:
        return  # refused: fine
    assert _structure(text) == _structure(baseline), value
    for line in text.splitlines():
        assert "\n" not in line and "\r" not in line
    if tmp_path is not None:
        result = haproxy_check(text, tmp_path)
        assert result.returncode == 0, (value, result.stdout + result.stderr)


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("value", ["new\nline", "hash#tag", "quote'", 'dq"', "sp ace",
                                   "back\\slash", "x\n    stats socket /tmp/evil level admin"])
def test_free_form_fields_with_special_characters(field: str, value: str,
                                                  tmp_path: Path) -> None:
    _check_inert(field, value, tmp_path if Path(HAPROXY).exists() else None)


@pytest.mark.parametrize("field", FIELDS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=NASTY)
def test_free_form_fields_never_add_a_directive(field: str, value: str) -> None:
    _check_inert(field, value, None)


@needs_haproxy
@settings(max_examples=25, deadline=None)
@given(field=st.sampled_from(FIELDS), value=NASTY)
def test_haproxy_accepts_whatever_the_renderer_lets_through(field: str, value: str,
                                                            tmp_path_factory: Callable[..., Path]
                                                            ) -> None:
    _check_inert(field, value, tmp_path_factory.mktemp("cfg"))  # type: ignore[attr-defined]


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda lb: dataclasses.replace(lb, id="../etc"), "load balancer id"),
    (lambda lb: dataclasses.replace(lb, vip=s.VipSpec(address="10.0.0.1 bind :1")), "VIP"),
    (lambda lb: dataclasses.replace(lb, topology="ACTIVE_PASSIVE"), "not one of SINGLE"),
    (lambda lb: dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], lb_algorithm="SOURCE_IP_PORT"), lb.pools[1])), "lb_algorithm"),
    (lambda lb: dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], members=(s.MemberSpec(id="m x", address="10.0.0.1", protocol_port=1),)),
        lb.pools[1])), "member id"),
    (lambda lb: dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], members=(s.MemberSpec(id="m", address="example.com", protocol_port=1),)),
        lb.pools[1])), "not an IP"),
    (lambda lb: dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], members=(s.MemberSpec(id="m", address="10.0.0.1", protocol_port=1,
                                           weight=999),)), lb.pools[1])), "weight"),
    (lambda lb: dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], allowed_cidrs=("10.0.0.0/8 0.0.0.0/0",)),)), "allowed_cidrs"),
    (lambda lb: dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], protocol="UDP"),)), "not supported"),
    (lambda lb: dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], tls_enabled=True, tls_ciphers="AES\nbind"), lb.pools[1])),
     "tls_ciphers"),
    (lambda lb: dataclasses.replace(lb, pools=(dataclasses.replace(
        lb.pools[0], tls_enabled=True, tls_ciphers="AES bind :1 ssl"), lb.pools[1])),
     "tls_ciphers"),
    (lambda lb: dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], protocol="TERMINATED_HTTPS", default_tls_container_ref="r",
        tls_versions=("TLSv9",)),)), "tls_versions"),
])
def test_refusals(mutate: Callable[[s.LoadBalancerSpec], s.LoadBalancerSpec],
                  message: str) -> None:
    with pytest.raises(RenderError, match=message):
        render.render(mutate(http_everything()), PATHS, TUNING)


@needs_haproxy
def test_many_allowed_cidrs_fit_haproxy_lines(tmp_path: Path) -> None:
    """HAProxy reads at most 64 words a line: the networks are split over ORed acl lines."""
    cidrs = (*(f"2001:db8:{i:x}:ffff:ffff:ffff:ffff:fff0/124" for i in range(995)),
             "10.0.0.0/8", "127.0.0.0/30", "192.0.2.0/24", "198.51.100.7/32", "::1/128")
    lb = http_everything()
    lb = dataclasses.replace(lb, listeners=(dataclasses.replace(
        lb.listeners[0], allowed_cidrs=cidrs),))
    text = render.render(lb, PATHS, TUNING)
    lines = [line.split() for line in text.splitlines() if "acl allowed-cidr src" in line]
    assert len(lines) == 20 and all(len(words) <= 64 for words in lines)
    assert [w for words in lines for w in words[3:]] == list(cidrs)
    result = haproxy_check(text, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("address", ["fe80::1%eth0", "::1%lo"])
def test_ipv6_zones_are_refused(address: str) -> None:
    lb = http_everything()
    member = s.MemberSpec(id="m", address="::1", protocol_port=80, monitor_address=address)
    zoned = dataclasses.replace(lb, pools=(dataclasses.replace(lb.pools[0], members=(member,)),
                                           lb.pools[1]))
    with pytest.raises(RenderError, match="not an IP address"):
        render.render(zoned, PATHS, TUNING)
    with pytest.raises(RenderError, match="not a network"):
        render.render(dataclasses.replace(lb, listeners=(dataclasses.replace(
            lb.listeners[0], allowed_cidrs=(address,)),)), PATHS, TUNING)


def test_disabled_objects_are_left_out() -> None:
    lb = http_everything()
    web = dataclasses.replace(lb.pools[0], admin_state_up=False)
    hm_off = dataclasses.replace(lb.pools[1], health_monitor=s.HealthMonitorSpec(
        id="h", type="HTTP", delay=1, timeout=1, max_retries=1, max_retries_down=1,
        admin_state_up=False))
    text = render.render(dataclasses.replace(lb, pools=(web, hm_off)), PATHS, TUNING)
    assert "pool-web" not in text and "default_backend" not in text
    assert "httpchk" not in text and " check" not in text
    assert "pol-off" not in text and "r-off" not in text


@needs_haproxy
def test_tls_strings_cannot_inject(tmp_path: Path) -> None:
    """An SSL_DN_FIELD rule's key and value and an HSTS value stay single words."""
    lb = EXAMPLES["tls"]()
    evil = s.L7RuleSpec(id="r-evil", type="SSL_DN_FIELD", compare_type="EQUAL_TO",
                        key="CN) if TRUE #", value="x' } use_backend evil #")
    li = dataclasses.replace(lb.listeners[0], l7policies=(s.L7PolicySpec(
        id="p-evil", action="REJECT", position=1, rules=(evil,)),))
    lb = dataclasses.replace(lb, listeners=(li, *lb.listeners[1:]))
    text = render.render(lb, PATHS, TUNING)
    acl = next(line for line in text.splitlines() if "r-evil" in line and "acl" in line)
    assert acl.strip() == ("acl r-evil 'ssl_c_s_dn('\\''CN) if TRUE #'\\'')' -m str -- "
                           "'x'\\'' } use_backend evil #'")
    result = haproxy_check(text, tmp_path, lb)
    assert result.returncode == 0, result.stdout + result.stderr
    with pytest.raises(RenderError):
        render.render(dataclasses.replace(lb, listeners=(dataclasses.replace(
            li, tls_ciphers="AES\n    bind :1"),)), PATHS, TUNING)


def test_server_lines_follow_their_pool_settings_through_the_cache() -> None:
    # Server views are cached per (pool settings, member): the same members under other
    # settings (a monitor, cookie persistence, a TLS listener) get their own lines, and
    # the first settings get theirs back, also after the other key objects were evicted.
    lb = http_lb("lb1", 80, (member("m1", 8001), member("m2", 8002)))
    monitored = with_pool(lb, health_monitor=s.HealthMonitorSpec(
        id="hm", type="TCP", delay=3, timeout=1, max_retries=2, max_retries_down=2))
    cookies = with_pool(lb, session_persistence=s.SessionPersistenceSpec(type="HTTP_COOKIE"))

    def options(spec: s.LoadBalancerSpec) -> list[tuple[str, ...]]:
        return [sv.options for sv in render.build_view(spec).backends[0].servers]

    plain = options(lb)
    assert plain == [("weight", "1"), ("weight", "1")]
    assert all("check" in o and "inter" in o for o in options(monitored))
    assert [o[-2:] for o in options(cookies)] == [("cookie", "m1"), ("cookie", "m2")]
    render._server_settings.cache_clear()
    assert options(lb) == plain and all("check" not in o for o in options(lb))
    assert all("check" in o for o in options(monitored))
