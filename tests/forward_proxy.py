"""A loopback forward proxy that stands in for hosts on ports 80 and 443.

Binding ports 80 and 443 needs privileges; a client sent through this proxy can still be given
``http://localhost/...`` and ``https://localhost/...`` (default ports, as API Gateway's are),
which the proxy serves from loopback servers on any port. ``CONNECT host:443`` is tunnelled as
raw bytes (the client's TLS runs end to end with the server); an absolute-form request
(``GET http://host/path``) goes on in origin form, with ``Connection: close`` put first so the
server ends the exchange after one response. Nothing else of the request is changed.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 65536


class ForwardProxy(socketserver.ThreadingTCPServer):
    """Serves ``routes``: ``"host:port"`` as the client names it -> a loopback server's port."""

    daemon_threads = False  # server_close() joins every exchange: none outlives the proxy
    allow_reuse_address = True

    def __init__(self, routes: Mapping[str, int]) -> None:
        super().__init__(("127.0.0.1", 0), _Exchange)
        self.routes = dict(routes)
        self.asked: list[str] = []  # "CONNECT host:port" or "GET http://...", in order
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def backend(self, authority: str) -> socket.socket:
        """A connection to the server standing in for ``authority`` (a KeyError if none)."""
        connection = socket.create_connection(("127.0.0.1", self.routes[authority]))
        self.track(connection)
        return connection

    def track(self, connection: socket.socket) -> None:
        with self._lock:
            self._open.add(connection)

    def untrack(self, *connections: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(connections)

    def close_all(self) -> None:
        """Shut every connection down, so no relaying thread outlives the proxy."""
        with self._lock:
            for connection in self._open:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)


class _Exchange(socketserver.BaseRequestHandler):
    server: ForwardProxy

    def handle(self) -> None:
        client = self.request
        self.server.track(client)
        try:
            self._exchange(client)
        finally:
            self.server.untrack(client)

    def _exchange(self, client: socket.socket) -> None:
        head = b""
        while _HEAD_END not in head:
            chunk = client.recv(4096)
            if not chunk or len(head) > _MAX_HEAD:
                return
            head += chunk
        head, _, rest = head.partition(_HEAD_END)
        request_line, _, fields = head.partition(b"\r\n")
        method, target, version = request_line.decode("ascii").split(" ")
        self.server.asked.append(f"{method} {target}")
        if method == "CONNECT":
            backend = self.server.backend(target)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            scheme, _, after = target.partition("://")
            authority, slash, path = after.partition("/")
            port = "443" if scheme == "https" else "80"
            backend = self.server.backend(authority if ":" in authority else f"{authority}:{port}")
            origin_form = f"{method} {slash}{path} {version}".encode("ascii")
            backend.sendall(origin_form + b"\r\nConnection: close\r\n" + fields + _HEAD_END)
        try:
            if rest:
                backend.sendall(rest)
            upstream = threading.Thread(target=_relay, args=(client, backend), daemon=True)
            upstream.start()
            _relay(backend, client)
            with contextlib.suppress(OSError):  # the server is done: so is the client's side
                client.shutdown(socket.SHUT_RDWR)
            upstream.join()
        finally:
            self.server.untrack(backend)
            backend.close()


def _relay(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` ends, then end ``sink``'s sending side."""
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def forward_proxy(routes: Mapping[str, int]) -> Iterator[ForwardProxy]:
    """``with forward_proxy({"localhost:80": port}) as proxy:`` -- served, then stopped."""
    proxy = ForwardProxy(routes)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.close_all()
        proxy.server_close()
        thread.join()
