"""A base for the local stand-ins of external services: an HTTPS (or HTTP) server in a daemon thread.

A stand-in subclasses ``LocalServer``, names itself and answers in ``_handle``;
the base serves, logs and stops::

    class LocalGitHub(LocalServer):
        name = "local GitHub"
        server_version = "LocalGitHub/1.0"

        def _handle(self, method: str, target: str, headers: HTTPMessage, body: bytes) -> Response:
            if (method, target) == ("GET", "/user"):
                return json_response(200, {"login": "octocat"})
            return json_response(404, {"message": "Not Found"})

    with LocalGitHub(cert_dir=tmp_path) as github:  # cert_dir=None serves plain HTTP
        core.http.session(ca_bundle=str(github.ca_path)).get(f"{github.url}/user")

``_handle`` runs in the connection's thread, one per connection: state it shares
needs a lock. An exception in it is logged and answered with a 500. Request lines
are never printed (authorization codes ride in query strings), and paths are
logged without their query. ``unreachable = True`` closes every connection
unanswered, as an outage looks to a client, and ``_handle`` raising
``DropConnection`` closes just that one; ``reset()`` clears ``unreachable``, and
subclasses extend ``reset()`` to restore the rest of their state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from http.client import HTTPMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from core import http
from devtools import tls

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20


class DropConnection(Exception):
    """Raised from ``_handle``: the connection closes unanswered, as a network drops it."""


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def json_response(
    status: int, body: Any, *, content_type: str = "application/json; charset=utf-8", headers: dict | None = None
) -> Response:
    return Response(status, json.dumps(body).encode(), content_type, dict(headers or {}))


def html_response(status: int, page: str) -> Response:
    return Response(status, page.encode(), "text/html; charset=utf-8", {"Cache-Control": "no-store"})


class LocalServer:
    """A server on ``host`` (loopback: the test CA vouches for nothing else) that hands requests to ``_handle``."""

    name = "local server"  # in log lines and the thread's name
    server_version = "LocalServer/1.0"
    max_body_bytes = MAX_BODY_BYTES  # a larger body is answered 413

    def __init__(self, *, cert_dir: Path | None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.cert_dir = Path(cert_dir) if cert_dir is not None else None
        self.host = host
        self.port = port  # 0: any free port, known once started
        self.unreachable = False
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def _handle(self, method: str, target: str, headers: HTTPMessage, body: bytes) -> Response:
        """The answer to one request; ``target`` is the path and query string as sent."""
        raise NotImplementedError

    def reset(self) -> None:
        """Back to the state the server was constructed with (subclasses restore their own state too)."""
        self.unreachable = False

    # lifecycle

    def start(self) -> Self:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self.port), stand_in=self)
        if self.cert_dir is not None:
            context = tls.server_context(self.cert_dir, host=self.host)
            # The handshake runs in the connection's thread (see _Handler.setup), so a client that
            # never finishes one cannot stall the accept loop.
            httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
        self._httpd = httpd
        self.port = httpd.server_address[1]
        # A short poll interval: stop() waits for the loop to notice, once per test.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=self.name, daemon=True
        )
        self._thread.start()
        logger.info("%s listening on %s", self.name, self.url)
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # addresses

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.cert_dir is not None else 'http'}://{host}:{self.port}"

    @property
    def ca_path(self) -> Path | None:
        """The test CA that issued the server's certificate: what a client's CA bundle needs."""
        return self.cert_dir / "ca.pem" if self.cert_dir is not None else None

    def http_session(self) -> http.PinnedSession:
        """A session of the project's HTTP chokepoint that trusts this server's CA."""
        return http.session(ca_bundle=str(self.ca_path) if self.ca_path else None)

    def _server_error(self) -> Response:
        # Retry-After: 0 keeps msal from replaying this 500 to every redemption of the next 5 s: its
        # throttle cache keys token requests by client and scope only (not by code).
        return json_response(
            500,
            {"error": "server_error", "error_description": f"{self.name} failed; see its log"},
            headers={"Retry-After": "0"},
        )


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, stand_in: LocalServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.stand_in = stand_in
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, which can hang for seconds with no network.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, connection: socket.socket, *, opened: bool) -> None:
        with self._connections_lock:
            (self._connections.add if opened else self._connections.discard)(connection)

    def close_connections(self) -> None:
        """Drop kept-alive connections, so a stopped server answers nobody."""
        with self._connections_lock:
            connections, self._connections = list(self._connections), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # TLS handshakes refused by clients that do not trust the CA, resets: expected, never printed.
        logger.debug("%s: connection from %s ended with an error", self.stand_in.name, client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sys_version = ""
    timeout = 30
    # Headers and body go out in separate writes: with Nagle's algorithm and delayed ACKs
    # each response would wait ~40 ms.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        self.server.track(self.request, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, opened=False)

    def version_string(self) -> str:
        return self.server.stand_in.server_version

    def log_message(self, format: str, *args: Any) -> None:
        # http.server would print request lines (authorization codes ride in query strings) to stderr.
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        stand_in = self.server.stand_in
        if stand_in.unreachable:
            self.close_connection = True
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > stand_in.max_body_bytes:
            self._write(Response(413, b"Request body too large", "text/plain"))
            return
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        try:
            response = stand_in._handle(method, self.path, self.headers, body)
        except DropConnection:
            self.close_connection = True
            return
        except Exception:
            logger.exception("%s: %s %s failed", stand_in.name, method, path)
            response = stand_in._server_error()
        logger.debug("%s: %s %s -> %s", stand_in.name, method, path, response.status)
        self._write(response)

    def _write(self, response: Response) -> None:
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        body = b"" if response.status == 304 else response.body
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
