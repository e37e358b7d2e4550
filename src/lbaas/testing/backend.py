"""A real HTTP/1.1 backend for data-plane tests (members behind HAProxy).

Why not ``python -m http.server``: its listen backlog is 5 (connections time
out under load with no reload at all) and ``HTTPServer.server_bind`` calls
``socket.getfqdn``, which stalls about 5 s inside a network namespace with no
DNS. This server has a large backlog, never resolves names, speaks HTTP/1.1
keep-alive, and answers every request with ``Welcome to <name>``.

What a test can do with it:

- switch the status code of ordinary requests at runtime (health-monitor
  tests): ``backend.status = 500`` in-process, or
  ``PUT /__backend__/status/500`` over HTTP (control requests always get 200);
- read the request headers HAProxy sent: ``GET /__backend__/headers``
  (a JSON object, names in lower case; for X-Forwarded-* tests);
- have the backend set a cookie on every answer (``set_cookie="JSESSIONID"``
  sets ``JSESSIONID=<name>``; for APP_COOKIE persistence);
- count the requests it served (``backend.requests``);
- answer slowly: ``GET /__backend__/sleep/<ms>`` is an ordinary request
  answered after ``ms`` milliseconds (requests in flight during a failover);
- serve the same answers over TLS (``tls_port``, a self-signed certificate
  made at start, or ``tls_cert=(cert.pem, key.pem)``; ``tls_client_ca``
  makes it require a client certificate signed by that CA) for HTTPS
  pass-through and re-encryption, and a raw TCP port (``tcp_port``)
  that writes ``Welcome to <name>\\n`` on connect and closes the connection
  (``nc`` prints the greeting and returns); with ``tcp_echo=True``
  (``--tcp-echo``) it keeps the connection open instead and echoes what it
  receives until the client closes (byte-counting and LEAST_CONNECTIONS
  tests hold connections open this way).

In-process (a thread)::

    with Backend("web1") as b:        # port 0: a free port on 127.0.0.1
        httpx.get(f"http://127.0.0.1:{b.port}/")

As a subprocess (e.g. inside a network namespace)::

    python -m lbaas.testing.backend --port 8080 --name web1 [--host 10.0.0.5]
        [--tls-port 8443] [--tcp-port 9000 [--tcp-echo]] [--status 200]
        [--set-cookie NAME]

prints ``READY <port> <tls_port> <tcp_port>`` (0 for a port not served) on
stdout once every socket listens, and runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import signal
import socket
import socketserver
import ssl
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

BACKLOG = 4096
CONTROL_PREFIX = "/__backend__/"


def _quiet_error(server: socketserver.BaseServer, request: Any, client_address: Any) -> None:
    # Peers (HAProxy) close and reset connections all the time; that is no news.
    if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
        return
    socketserver.BaseServer.handle_error(server, request, client_address)


class _HttpServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = BACKLOG
    backend: Backend
    handle_error = _quiet_error

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn() (reverse DNS).
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _V6HttpServer(_HttpServer):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests make thousands of requests."""

    def address_string(self) -> str:
        return str(self.client_address[0])

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain") -> None:
        backend = self.server.backend
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Backend", backend.name)
        if backend.set_cookie:
            self.send_header("Set-Cookie", f"{backend.set_cookie}={backend.name}; Path=/")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        backend = self.server.backend
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.startswith(CONTROL_PREFIX + "sleep/"):  # a slow ordinary request
            time.sleep(int(self.path.rsplit("/", 1)[1]) / 1000)
        elif self.path.startswith(CONTROL_PREFIX):
            self._control(self.path[len(CONTROL_PREFIX):])
            return
        with backend.lock:
            backend.requests += 1
            status = backend.status
        self._answer(status, f"Welcome to {backend.name}\n".encode())

    def _control(self, command: str) -> None:
        backend = self.server.backend
        if command.startswith("status/"):
            backend.status = int(command.split("/", 1)[1])
            self._answer(200, b"ok\n")
        elif command == "headers":
            body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
            self._answer(200, body, "application/json")
        elif command == "count":
            self._answer(200, str(backend.requests).encode())
        else:
            self._answer(404, b"unknown control command\n")

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = do_PATCH = _handle


class _TcpHandler(socketserver.BaseRequestHandler):
    server: _TcpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        backend = self.server.backend
        try:
            sock.sendall(f"Welcome to {backend.name}\n".encode())
            while backend.tcp_echo and (data := sock.recv(65536)):
                sock.sendall(data)
        except OSError:
            pass


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = BACKLOG
    backend: Backend
    handle_error = _quiet_error


class _V6TcpServer(_TcpServer):
    address_family = socket.AF_INET6


def _self_signed(directory: Path, host: str) -> tuple[Path, Path]:
    """A throwaway key and certificate for ``host`` (PEM files in ``directory``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lbaas-test-backend")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class Backend:
    """One backend: an HTTP port, optionally a TLS port and a raw TCP port.

    Ports given as 0 are picked free by the kernel (read them back from
    :attr:`port`, :attr:`tls_port`, :attr:`tcp_port` after :meth:`start`);
    ``None`` means that port is not served. ``status`` is the HTTP status of
    ordinary requests and may be changed at any time. The TCP port greets and
    closes, or with ``tcp_echo`` greets and echoes until the client closes.
    """

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0,
                 tls_port: int | None = None, tcp_port: int | None = None,
                 status: int = 200, set_cookie: str | None = None,
                 tcp_echo: bool = False, tls_cert: tuple[Path, Path] | None = None,
                 tls_client_ca: Path | None = None) -> None:
        self.name = name
        self.tcp_echo = tcp_echo
        self.tls_cert = tls_cert
        self.tls_client_ca = tls_client_ca
        self.host = host
        self.status = status
        self.set_cookie = set_cookie
        self.requests = 0
        self.lock = threading.Lock()
        self._want = {"http": port, "tls": tls_port, "tcp": tcp_port}
        self.port = 0
        self.tls_port = 0
        self.tcp_port = 0
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def _serve(self, server: socketserver.BaseServer) -> None:
        t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                             name=f"backend-{self.name}", daemon=True)
        t.start()
        self._servers.append(server)
        self._threads.append(t)

    def start(self) -> Backend:
        """Bind and serve every configured port (returns self)."""
        v6 = ":" in self.host
        http_cls = _V6HttpServer if v6 else _HttpServer
        http = http_cls((self.host, self._want["http"] or 0), _Handler)
        http.backend = self
        self.port = http.server_address[1]
        self._serve(http)
        if self._want["tls"] is not None:
            if self.tls_cert is not None:
                cert, key = self.tls_cert
            else:
                self._tmp = tempfile.TemporaryDirectory(prefix="lbaas-backend-")
                key, cert = _self_signed(Path(self._tmp.name), self.host)
            tls = http_cls((self.host, self._want["tls"] or 0), _Handler,
                           bind_and_activate=False)
            tls.backend = self
            tls.server_bind()
            tls.server_activate()
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            if self.tls_client_ca is not None:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(self.tls_client_ca)
            tls.socket = ctx.wrap_socket(tls.socket, server_side=True,
                                         do_handshake_on_connect=False)
            self.tls_port = tls.server_address[1]
            self._serve(tls)
        if self._want["tcp"] is not None:
            tcp_cls = _V6TcpServer if v6 else _TcpServer
            tcp = tcp_cls((self.host, self._want["tcp"] or 0), _TcpHandler)
            tcp.backend = self
            self.tcp_port = tcp.server_address[1]
            self._serve(tcp)
        return self

    def stop(self) -> None:
        """Stop serving and close every socket."""
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for t in self._threads:
            t.join(5)
        self._servers.clear()
        self._threads.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m lbaas.testing.backend``: serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--name", default="backend")
    parser.add_argument("--tls-port", type=int, default=None)
    parser.add_argument("--tcp-port", type=int, default=None)
    parser.add_argument("--tcp-echo", action="store_true",
                        help="keep TCP connections open and echo (default: greet and close)")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--set-cookie", default=None)
    args = parser.parse_args(argv)
    backend = Backend(args.name, host=args.host, port=args.port, tls_port=args.tls_port,
                      tcp_port=args.tcp_port, status=args.status,
                      set_cookie=args.set_cookie, tcp_echo=args.tcp_echo).start()
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    # One write, so that a reader who closes the pipe after the line cannot
    # make a second write fail (and a closed pipe is no reason to stop serving).
    with contextlib.suppress(BrokenPipeError):
        os.write(sys.stdout.fileno(),
                 f"READY {backend.port} {backend.tls_port} {backend.tcp_port}\n".encode())
    done.wait()
    backend.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
