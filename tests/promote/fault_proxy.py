"""A fault-injecting HTTP proxy for S3 tests: boto3 → proxy → moto's server, over real sockets.

Rules pick requests by method and object key and answer them with an S3 error, cut the
connection part-way through the upload, lose the response of a request that succeeded, or hold
them until the test releases them. Everything else is forwarded unchanged. Standard library only:
the faults live at the socket level (half-sent bodies, TCP resets), below what a mocking library
or an HTTP-level proxy package exposes.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit

# Headers that describe one connection, not the request: never forwarded.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",  # the proxy answered `100 Continue` itself
}


@dataclass(frozen=True)
class Respond:
    """Answer with an S3 error response (XML body, as S3 sends it) instead of forwarding."""

    status: int
    code: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"answered {self.status} {self.code}"


def internal_error() -> Respond:
    """S3's 500: a transient server-side failure."""
    return Respond(500, "InternalError", "We encountered an internal error. Please try again.")


def service_unavailable() -> Respond:
    """S3's 503 without throttling: the service cannot handle the request right now."""
    return Respond(503, "ServiceUnavailable", "Service is unable to handle request.")


def slow_down(retry_after_ms: int | None = None) -> Respond:
    """S3's throttling answer (503 SlowDown), optionally saying when to come back."""
    headers: tuple[tuple[str, str], ...] = ()
    if retry_after_ms is not None:
        # Retry-After is HTTP's (whole seconds); botocore reads x-amz-retry-after (milliseconds).
        seconds = str(max(1, -(-retry_after_ms // 1000)))
        headers = (("Retry-After", seconds), ("x-amz-retry-after", str(retry_after_ms)))
    return Respond(503, "SlowDown", "Please reduce your request rate.", headers)


@dataclass(frozen=True)
class Drop:
    """Forward the headers and the first `after_bytes` of the body, then reset both sockets."""

    after_bytes: int

    def describe(self) -> str:
        return f"dropped after {self.after_bytes} body bytes"


@dataclass(frozen=True)
class LoseResponse:
    """Forward the whole request, then reset the client's socket instead of answering."""

    def describe(self) -> str:
        return "forwarded, response lost"


@dataclass(frozen=True)
class Truncate:
    """Forward the request, then cut the response off: after `body_bytes` of its body, or in
    the middle of its headers when None. The cut is announced by closing the connection with
    the full Content-Length promised, or, `consistent`, hidden behind a Content-Length that
    matches the cut body (so the client sees a complete answer it cannot parse)."""

    body_bytes: int | None
    consistent: bool = False

    def describe(self) -> str:
        where = "in its headers" if self.body_bytes is None else f"after {self.body_bytes} bytes"
        return f"forwarded, response cut {where}" + (" (consistent)" if self.consistent else "")


class Hold:
    """Block matching requests until `release`; then forward them, or drop them unsent."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._forward = True

    def wait_arrived(self, timeout: float) -> bool:
        """Whether a matching request reached the proxy within `timeout` seconds."""
        return self.arrived.wait(timeout)

    def release(self, *, forward: bool) -> None:
        """Let held (and later) requests go on: to the server, or nowhere (sockets reset)."""
        self._forward = forward
        self._released.set()

    def _wait(self) -> bool:
        self.arrived.set()
        self._released.wait()
        return self._forward

    def describe(self) -> str:
        return "held, then " + ("forwarded" if self._forward else "dropped unsent")


Action = Respond | Drop | LoseResponse | Truncate | Hold


@dataclass
class Rule:
    """Apply `action` to requests with `method` whose key fully matches `key`: after letting
    `skip` of them through, to the next `times` of them (every one when `times` is None)."""

    method: str
    key: re.Pattern[str]
    action: Action
    skip: int = 0
    times: int | None = 1
    matched: int = 0
    fired: int = 0

    def _take(self, method: str, key: str) -> bool:
        if method != self.method or not self.key.fullmatch(key):
            return False
        self.matched += 1
        nth = self.matched - self.skip
        if nth < 1 or (self.times is not None and nth > self.times):
            return False
        self.fired += 1
        return True


@dataclass(frozen=True)
class Exchange:
    """One request the proxy saw and what it did with it."""

    method: str
    key: str
    outcome: str  # "forwarded 200", "answered 503 SlowDown", "dropped after 512 body bytes"…
    body_bytes: int  # the Content-Length the client announced
    arrived: float = 0.0  # time.monotonic() when the request's headers had arrived
    ended: float = 0.0  # … and when the proxy was done with it
    target: str = ""  # for POSTs to the service root (STS): the form's Action


@dataclass
class FaultProxy:
    """A threaded HTTP proxy on 127.0.0.1 in front of `upstream` (an http:// URL)."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _connections: set[socket.socket] = field(default_factory=set)
    _server: _Server | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The endpoint to give boto3 (`AWS_ENDPOINT_URL`)."""
        assert self._server is not None, "the proxy is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add(
        self, method: str, key: str, action: Action, *, skip: int = 0, times: int | None = 1
    ) -> Rule:
        """Add a rule; `key` is a regular expression the whole object key must match."""
        rule = Rule(method, re.compile(key), action, skip, times)
        with self._lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule (held requests are dropped) and forget the exchanges seen."""
        with self._lock:
            rules, self.rules = self.rules, []
            self.exchanges.clear()
        for rule in rules:
            if isinstance(rule.action, Hold):
                rule.action.release(forward=False)

    def seen(self, method: str, key: str) -> list[Exchange]:
        """The exchanges of `method` requests whose key fully matches `key`, in order."""
        pattern = re.compile(key)
        with self._lock:
            return [e for e in self.exchanges if e.method == method and pattern.fullmatch(e.key)]

    def start(self) -> Self:
        """Listen on a free loopback port and serve in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Release every hold, stop serving, end every client connection and join the threads
        that served them."""
        self.clear()
        if self._server is not None:
            self._server.shutdown()
            with self._lock:
                connections = list(self._connections)
            for connection in connections:  # idle keep-alive connections block their threads
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
            self._server.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _match(self, method: str, key: str) -> Action | None:
        with self._lock:
            for rule in self.rules:
                if rule._take(method, key):
                    return rule.action
        return None

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins them
    block_on_close = True
    proxy: FaultProxy


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a dying peer or a broken network would."""
    with contextlib.suppress(OSError):  # already closed by the peer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and `Expect: 100-continue`, like S3
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.proxy._lock:
            self.server.proxy._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.proxy._lock:
            self.server.proxy._connections.discard(self.connection)
        with contextlib.suppress(OSError):  # the client may have reset the connection
            super().finish()

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request would drown the test output

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

    def _handle(self) -> None:
        proxy = self.server.proxy
        self._target = ""  # one handler serves every request of a keep-alive connection
        path = urlsplit(self.path).path
        key = unquote(path).lstrip("/").partition("/")[2]  # path-style: /<bucket>/<key>
        length = int(self.headers.get("Content-Length") or 0)
        arrived = time.monotonic()
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self._answer(Respond(501, "NotImplemented", "the fault proxy needs Content-Length"))
            self.close_connection = True
            return
        action = proxy._match(self.command, key)

        def record(outcome: str, target: str = "") -> None:
            exchange = Exchange(
                self.command, key, outcome, length, arrived, time.monotonic(), target
            )
            proxy._record(exchange)

        if isinstance(action, Hold):
            forward = action._wait()
            if not forward:
                self._reset_client()
                record(action.describe())
                return
        if isinstance(action, Respond):
            # Recorded before it is sent: a client that gives up on this answer may exit, and
            # its test count the exchanges, before this thread would run again.
            query = b"Action=" in self.rfile.read(length)
            record(action.describe())
            # STS and the other query-protocol services wrap the error in <ErrorResponse>.
            self._answer(action, query=query)
            return
        elif isinstance(action, Drop):
            self._forward(length, drop_after=action.after_bytes)
            outcome = action.describe()
        else:
            status = self._forward(
                length,
                lose_response=isinstance(action, LoseResponse),
                truncate=action if isinstance(action, Truncate) else None,
            )
            outcome = action.describe() if action is not None else f"forwarded {status}"
        record(outcome, self._target)

    _target = ""

    def _forward(
        self,
        length: int,
        *,
        drop_after: int | None = None,
        lose_response: bool = False,
        truncate: Truncate | None = None,
    ) -> int:
        upstream = urlsplit(self.server.proxy.upstream)
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        try:
            connection.putrequest(
                self.command, self.path, skip_host=True, skip_accept_encoding=True
            )
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    connection.putheader(name, value)
            connection.endheaders()
            if drop_after is not None:
                # Let the server see a started upload, then vanish mid-body on both sides.
                connection.send(self.rfile.read(min(drop_after, length)))
                assert connection.sock is not None
                _reset(connection.sock)
                connection.sock = None
                self._reset_client()
                return 0
            sent = self.rfile.read(length)
            if self.command == "POST" and b"Action=" in sent:
                self._target = sent.decode(errors="replace").partition("Action=")[2].split("&")[0]
            connection.send(sent)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if lose_response:
            self._reset_client()
            return response.status
        cut = truncate is not None and truncate.body_bytes is not None
        if truncate is not None and truncate.body_bytes is None:
            self.send_response_only(response.status, response.reason)
            self.flush_headers()  # the status line, then nothing more: cut in the headers
            self._reset_client()
            return response.status
        sent = body[: truncate.body_bytes] if cut and truncate is not None else body
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            lower = name.lower()
            if lower in _HOP_BY_HOP or (lower == "content-length" and self.command != "HEAD"):
                continue
            self.send_header(name, value)
        if self.command != "HEAD":  # a HEAD keeps the object's Content-Length, with no body
            announced = sent if truncate is not None and truncate.consistent else body
            self.send_header("Content-Length", str(len(announced)))
        self.end_headers()
        self.wfile.write(sent)
        if cut and truncate is not None and not truncate.consistent:
            self.wfile.flush()
            self._reset_client()
        return response.status

    def _answer(self, error: Respond, *, query: bool = False) -> None:
        request_id = uuid.uuid4().hex[:16].upper()
        inner = f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
        if query:
            inner = (
                f"<ErrorResponse>{inner}<Type>Receiver</Type></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            )
        else:
            inner += f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n' + inner).encode()
        self.send_response_only(error.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-amz-request-id", request_id)
        for name, value in error.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _reset_client(self) -> None:
        self.close_connection = True
        _reset(self.connection)
