"""HTTP plumbing of the sandbox: routing, JSON I/O, the request log, latency and faults.

The simulators (`amazon`, `vtex`, `commerce`) only see `Request` objects and return
`Response` objects; everything about sockets lives here. One `ThreadingHTTPServer` on loopback
serves all three systems under path prefixes, so one port is enough for a whole run. Handlers
run under one lock: state changes are tiny, and a single lock makes every request atomic, which
is what the real systems promise per request.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from connector.sandbox.faults import Faults, corrupted, fault_response

__all__ = [
    "Faults",
    "HttpError",
    "Mount",
    "Request",
    "RequestRecord",
    "Response",
    "Route",
    "SandboxServer",
    "route",
]


@dataclass
class Request:
    """One request as a simulator sees it: `path` is relative to the system's mount point."""

    system: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name), or None."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def arg(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def args(self, name: str) -> list[str]:
        """All values of a list-valued query parameter: repeated and/or comma-separated."""
        return [part.strip() for value in self.query.get(name, []) for part in value.split(",")
                if part.strip()]

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        if not self.body.strip():
            raise ValueError("the request has no body")
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """A response ready to be written: status, encoded body, headers."""

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # A fault: send only this many bytes of the body (with its full Content-Length), then
    # close the connection, so the client sees an incomplete read.
    cut_at: int | None = None

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON response; the body is encoded now, while the caller still holds the lock."""
        merged = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        return cls(status, json.dumps(payload, ensure_ascii=False).encode("utf-8"), merged)

    @classmethod
    def empty(cls, status: int, headers: Mapping[str, str] | None = None) -> Response:
        """A response without a body (204, or 200 for the logistics actions)."""
        return cls(status, b"", dict(headers or {}))


class HttpError(Exception):
    """Raised by a handler to answer with `response` instead of its normal result."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """A method and path pattern (named groups = path parameters) bound to a handler."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    operation: str


def route(method: str, template: str, handler: Handler, operation: str = "") -> Route:
    """Build a route from a template such as `/orders/{orderId}/cancel`."""
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Route(method.upper(), re.compile(regex), handler, operation or template)


@dataclass
class Mount:
    """A system's routes under one path prefix, with its auth and error conventions.

    `relative_log` says whether the request log records the path relative to the prefix (the
    prefix is the system's base URL) or the full path (token and upload URLs, which are
    absolute URLs in the settings or in responses).
    """

    prefix: str
    system: str
    routes: list[Route]
    error: Callable[[int, str], Response]
    authenticate: Callable[[Request], Response | None] | None = None
    before: Callable[[Request, Route], Response | None] | None = None
    after: Callable[[Request, Route | None, Response], None] | None = None
    relative_log: bool = True


class RequestRecord(NamedTuple):
    """One entry of `Sandbox.requests`; status 0 means the connection was dropped."""

    system: str
    method: str
    path: str
    status: int


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so that `stop()` can end keep-alive ones and join threads."""

    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once
    app: SandboxServer

    def __init__(self, address: tuple[str, int], app: SandboxServer) -> None:
        self.app = app
        self._connections: dict[Any, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One thread per connection, remembered so that stop() can end it."""
        thread = threading.Thread(target=self.process_request_thread,
                                  args=(request, client_address), daemon=True)
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        """Forget a connection once its handler is done with it."""
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-response is not worth a traceback."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Shut down idle keep-alive sockets (their threads then end) and join the threads."""
        with self._connections_lock:
            open_ones = list(self._connections.items())
        for sock, _ in open_ones:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for _, thread in open_ones:
            thread.join(timeout)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60
    # Headers and body are separate writes; without TCP_NODELAY, Nagle's algorithm and the
    # client's delayed ACK add ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the sandbox keeps its own request log."""

    def _body(self) -> bytes | None:
        """The request body; None when the client went away before sending all of it (a
        real server never handles such a request)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                line = self.rfile.readline()
                if not line:
                    return None
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    return None
                chunks.append(chunk)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else None

    def _handle(self) -> None:
        body = self._body()
        if body is None:
            self.close_connection = True
            return
        response = self.server.app.handle(self.command, self.path, self.headers, body)
        if response is None:
            self.close_connection = True
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.cut_at is not None:
            self.wfile.write(response.body[: response.cut_at])
            self.wfile.flush()
            self.close_connection = True
        elif response.status not in (204, 304) and self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle


class SandboxServer:
    """Dispatches requests to mounted simulators and serves them on loopback."""

    def __init__(self, mounts: list[Mount], lock: threading.RLock, faults: Faults,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        self.lock = lock
        self.faults = faults
        self.latency = 0.0
        self.requests: list[RequestRecord] = []
        self.errors: list[BaseException] = []
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """`http://host:port` of the running server; RuntimeError before start()."""
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Bind (port 0 = any free port) and serve in a background thread; idempotent."""
        if self._httpd is not None:
            return
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02},
                                        name="connector-sandbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, end open connections, release the socket; idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections(timeout=5.0)
        httpd.server_close()
        if thread is not None:
            thread.join(5.0)
        self._httpd = self._thread = None

    def _mount_for(self, path: str) -> Mount | None:
        for mount in self.mounts:
            if path == mount.prefix or path.startswith(mount.prefix + "/"):
                return mount
        return None

    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Response | None:
        """Answer one request; None means: close the connection without answering."""
        url = urlsplit(target)
        mount = self._mount_for(url.path)
        if mount is None:
            self._log("", method, url.path, 404)
            return Response.json(404, {"message": f"No sandbox system serves {url.path}"})
        relative = url.path[len(mount.prefix):] or "/"
        logged = relative if mount.relative_log else url.path
        request = Request(mount.system, method, relative,
                          parse_qs(url.query, keep_blank_values=True), headers, body)
        if self.latency > 0:
            time.sleep(self.latency)
        system = mount.system
        for hook in self.faults.hooks(system, method, logged, after=False):
            hook(request)
        name, fault = self.faults.pick(system, method, logged) or ("", None)
        response: Response | None = None
        if fault is not None and not fault.act:
            if fault.kind == "drop":
                return self._trigger(name, system, method, logged, None)
            if fault.kind == "fail":
                answer = fault_response(fault, mount.error)
                return self._trigger(name, system, method, logged, answer)
            if fault.kind == "corrupt":
                return self._trigger(name, system, method, logged, corrupted(fault, None))
            time.sleep(fault.seconds)  # a delay before acting
        with self.lock:
            response = self._dispatch(mount, request)
        for hook in self.faults.hooks(system, method, logged, after=True):
            hook(request)
        if fault is None:
            self._log(system, method, logged, response.status)
            return response
        if fault.act:
            if fault.kind == "drop":
                return self._trigger(name, system, method, logged, None)
            if fault.kind == "fail":
                response = fault_response(fault, mount.error)
            elif fault.kind == "corrupt":
                response = corrupted(fault, response)
            elif fault.kind == "delay":
                time.sleep(fault.seconds)
        return self._trigger(name, system, method, logged, response)

    def _trigger(self, name: str, system: str, method: str, path: str,
                 response: Response | None) -> Response | None:
        """Log a request that met a fault (status 0: dropped) and note the fault."""
        record = self._log(system, method, path, 0 if response is None else response.status)
        self.faults.triggered.append((name, record))
        return response

    def _dispatch(self, mount: Mount, request: Request) -> Response:
        found: Route | None = None
        for candidate in mount.routes:
            match = candidate.pattern.fullmatch(request.path)
            if match and candidate.method == request.method:
                found = candidate
                request.params = {k: unquote(v) for k, v in match.groupdict().items()}
                break
        if found is None:
            response = mount.error(404, f"No route for {request.method} {request.path}")
        else:
            response = self._run(mount, found, request)
        if mount.after is not None:
            mount.after(request, found, response)
        return response

    def _run(self, mount: Mount, found: Route, request: Request) -> Response:
        refused = mount.authenticate(request) if mount.authenticate is not None else None
        if refused is None and mount.before is not None:
            refused = mount.before(request, found)
        if refused is not None:
            return refused
        try:
            return found.handler(request)
        except HttpError as error:
            return error.response
        except Exception as error:  # noqa: BLE001 - a simulator bug: answer 500, keep it
            self.errors.append(error)
            traceback.print_exc(file=sys.stderr)
            return mount.error(500, f"Sandbox error: {error!r}")

    def _log(self, system: str, method: str, path: str, status: int) -> RequestRecord:
        record = RequestRecord(system, method, path, status)
        self.requests.append(record)
        return record
