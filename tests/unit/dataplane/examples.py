"""Representative load balancers for the golden render tests."""

from __future__ import annotations

from lbaas.dataplane import spec as s

VIP = s.VipSpec(address="10.0.0.10")


def http_everything() -> s.LoadBalancerSpec:
    """HTTP listener with every supported option, L7 policies, and a PROMETHEUS listener."""
    hm = s.HealthMonitorSpec(id="hm-1", type="HTTP", delay=5, timeout=3, max_retries=2,
                             max_retries_down=3, http_method="HEAD", url_path="/healthz?full=1",
                             expected_codes="200-202", http_version=1.1,
                             domain_name="app.example.com")
    web = s.PoolSpec(
        id="pool-web", protocol="HTTP", lb_algorithm="ROUND_ROBIN", health_monitor=hm,
        session_persistence=s.SessionPersistenceSpec(type="APP_COOKIE", cookie_name="JSESSIONID"),
        members=(s.MemberSpec(id="m-1", address="10.0.1.11", protocol_port=8080),
                 s.MemberSpec(id="m-2", address="10.0.1.12", protocol_port=8080, weight=5,
                              monitor_address="10.0.2.12", monitor_port=9000),
                 s.MemberSpec(id="m-3", address="fd00::13", protocol_port=8080, backup=True),
                 s.MemberSpec(id="m-4", address="10.0.1.14", protocol_port=8080, weight=0,
                              admin_state_up=False)))
    api = s.PoolSpec(
        id="pool-api", protocol="HTTP", lb_algorithm="LEAST_CONNECTIONS",
        session_persistence=s.SessionPersistenceSpec(type="HTTP_COOKIE"),
        members=(s.MemberSpec(id="m-5", address="10.0.1.21", protocol_port=80),))
    rule = s.L7RuleSpec
    policies = (
        s.L7PolicySpec(id="pol-api", action="REDIRECT_TO_POOL", position=1,
                       redirect_pool_id="pool-api",
                       rules=(rule(id="r-path", type="PATH", compare_type="STARTS_WITH",
                                   value="/api"),
                              rule(id="r-ver", type="HEADER", compare_type="REGEX",
                                   key="X-Version", value=r"^v\d+$", invert=True))),
        s.L7PolicySpec(id="pol-deny", action="REJECT", position=2,
                       rules=(rule(id="r-cookie", type="COOKIE", compare_type="EQUAL_TO",
                                   key="role", value="banned user"),)),
        s.L7PolicySpec(id="pol-old", action="REDIRECT_TO_URL", position=3,
                       redirect_url="https://new.example.com/landing%20page",
                       redirect_http_code=301,
                       rules=(rule(id="r-host", type="HOST_NAME", compare_type="ENDS_WITH",
                                   value=".old.example.com"),)),
        s.L7PolicySpec(id="pol-img", action="REDIRECT_PREFIX", position=4,
                       redirect_prefix="https://cdn.example.com",
                       rules=(rule(id="r-ext", type="FILE_TYPE", compare_type="EQUAL_TO",
                                   value="png"),)),
        s.L7PolicySpec(id="pol-off", action="REJECT", position=5, admin_state_up=False,
                       rules=(rule(id="r-off", type="PATH", compare_type="CONTAINS",
                                   value="x"),)),
    )
    http = s.ListenerSpec(
        id="lsn-http", protocol="HTTP", protocol_port=80, connection_limit=5000,
        default_pool_id="pool-web", timeout_client_data=30000, timeout_member_connect=3000,
        timeout_member_data=60000, timeout_tcp_inspect=500,
        insert_headers=(("X-Forwarded-For", "true"), ("X-Forwarded-Port", "true"),
                        ("X-Forwarded-Proto", "True")),
        allowed_cidrs=("10.0.0.0/8", "2001:db8::/32"), l7policies=policies)
    prom = s.ListenerSpec(id="lsn-prom", protocol="PROMETHEUS", protocol_port=9100)
    return s.LoadBalancerSpec(id="lb-http", project_id="p", vip=VIP,
                              additional_vips=(s.VipSpec(address="fd00::10"),),
                              listeners=(http, prom), pools=(web, api))


def tcp_and_passthrough() -> s.LoadBalancerSpec:
    """TCP with SOURCE_IP and PING; HTTPS pass-through with TLS-HELLO; PROXY protocol."""
    db = s.PoolSpec(
        id="pool-db", protocol="TCP", lb_algorithm="SOURCE_IP",
        session_persistence=s.SessionPersistenceSpec(type="SOURCE_IP"),
        health_monitor=s.HealthMonitorSpec(id="hm-db", type="PING", delay=10, timeout=5,
                                           max_retries=3, max_retries_down=3),
        members=(s.MemberSpec(id="m-db1", address="10.0.3.1", protocol_port=5432),
                 s.MemberSpec(id="m-db2", address="10.0.3.2", protocol_port=5432)))
    tls = s.PoolSpec(
        id="pool-tls", protocol="HTTPS", lb_algorithm="ROUND_ROBIN",
        health_monitor=s.HealthMonitorSpec(id="hm-tls", type="TLS-HELLO", delay=5, timeout=5,
                                           max_retries=3, max_retries_down=2),
        members=(s.MemberSpec(id="m-tls1", address="10.0.4.1", protocol_port=443),))
    proxied = s.PoolSpec(
        id="pool-proxy", protocol="PROXYV2", lb_algorithm="ROUND_ROBIN",
        health_monitor=s.HealthMonitorSpec(id="hm-tcp", type="TCP", delay=2, timeout=1,
                                           max_retries=1, max_retries_down=1),
        members=(s.MemberSpec(id="m-px1", address="10.0.5.1", protocol_port=7000),))
    return s.LoadBalancerSpec(
        id="lb-tcp", project_id="p", vip=VIP,
        listeners=(s.ListenerSpec(id="lsn-db", protocol="TCP", protocol_port=5432,
                                  default_pool_id="pool-db"),
                   s.ListenerSpec(id="lsn-tls", protocol="HTTPS", protocol_port=443,
                                  default_pool_id="pool-tls", connection_limit=100),
                   s.ListenerSpec(id="lsn-px", protocol="TCP", protocol_port=7000,
                                  default_pool_id="pool-proxy"),
                   s.ListenerSpec(id="lsn-off", protocol="TCP", protocol_port=7001,
                                  admin_state_up=False, default_pool_id="pool-proxy")),
        pools=(db, tls, proxied))


def disabled() -> s.LoadBalancerSpec:
    """A disabled load balancer: HAProxy runs with no proxies."""
    lb = tcp_and_passthrough()
    return s.LoadBalancerSpec(id="lb-off", project_id="p", vip=VIP, admin_state_up=False,
                              listeners=lb.listeners, pools=lb.pools)


def tls() -> s.LoadBalancerSpec:
    """TERMINATED_HTTPS with SNI, mandatory client certificates and a CRL, HSTS, X-SSL-*
    headers and L7 rules on the client certificate; re-encryption to members with a
    client certificate, a CA and a CRL; PROMETHEUS over TLS."""
    from lbaas.testing.pki import Authority

    ca = Authority.new("golden CA")
    leaf = ca.issue("www.example.com")
    files = (s.TlsFileSpec.of(s.TLS_CERT, "ref-web", leaf.pem_bundle().decode()),
             s.TlsFileSpec.of(s.TLS_CERT, "ref-sni", leaf.pem_bundle().decode()),
             s.TlsFileSpec.of(s.TLS_CA, "ref-ca", ca.cert_pem.decode()),
             s.TlsFileSpec.of(s.TLS_CRL, "ref-crl", ca.crl().decode()))
    rule = s.L7RuleSpec
    policies = (
        s.L7PolicySpec(id="pol-nocert", action="REJECT", position=1, rules=(
            rule(id="r-cert", type="SSL_CONN_HAS_CERT", compare_type="EQUAL_TO", value="TRUE",
                 invert=True),)),
        s.L7PolicySpec(id="pol-verify", action="REJECT", position=2, rules=(
            rule(id="r-verify", type="SSL_VERIFY_RESULT", compare_type="EQUAL_TO",
                 value="0", invert=True),)),
        s.L7PolicySpec(id="pol-dn", action="REDIRECT_TO_URL", position=3,
                       redirect_url="https://example.com/ops", rules=(
                           rule(id="r-dn", type="SSL_DN_FIELD", compare_type="STARTS_WITH",
                                key="OU", value="ops"),)),
    )
    web = s.ListenerSpec(
        id="lsn-https", protocol="TERMINATED_HTTPS", protocol_port=443,
        default_pool_id="pool-reenc", default_tls_container_ref="ref-web",
        sni_container_refs=("ref-sni",), client_authentication="MANDATORY",
        client_ca_tls_container_ref="ref-ca", client_crl_container_ref="ref-crl",
        tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_128_GCM_SHA256",
        tls_versions=("TLSv1.2", "TLSv1.3"), alpn_protocols=("h2", "http/1.1"),
        hsts_max_age=31536000, hsts_include_subdomains=True, hsts_preload=True,
        insert_headers=(("X-Forwarded-Proto", "true"), ("X-SSL-Client-DN", "true"),
                        ("X-SSL-Client-SHA1", "true"), ("X-SSL-Client-Verify", "true")),
        l7policies=policies)
    prom = s.ListenerSpec(id="lsn-prom", protocol="PROMETHEUS", protocol_port=9443,
                          default_tls_container_ref="ref-web", tls_versions=("TLSv1.3",))
    pool = s.PoolSpec(
        id="pool-reenc", protocol="HTTP", lb_algorithm="ROUND_ROBIN", tls_enabled=True,
        tls_container_ref="ref-web", ca_tls_container_ref="ref-ca", crl_container_ref="ref-crl",
        tls_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256", tls_versions=("TLSv1.3",),
        alpn_protocols=("h2", "http/1.1"),
        health_monitor=s.HealthMonitorSpec(id="hm-https", type="HTTPS", delay=5, timeout=3,
                                           max_retries=2, max_retries_down=3, url_path="/"),
        members=(s.MemberSpec(id="m-app1", address="10.0.5.1", protocol_port=8443),))
    return s.LoadBalancerSpec(id="lb-tls", project_id="p", vip=VIP, listeners=(web, prom),
                              pools=(pool,), tls_files=files)


EXAMPLES = {"http_everything": http_everything, "tcp_and_passthrough": tcp_and_passthrough,
            "disabled": disabled, "tls": tls}
