"""A small generic HTTP stub on loopback, driven by a YAML file of routes (no system knowledge).

The fictional-system test project (tests/fixtures/fourth/) proves that a new marketplace
needs YAML only; its servers must then be as ignorant as the engine, so they are declared too:

    routes:
      - method: GET
        path: /bazaar/v2/orders          # exact path; query parameters listed must match
        query: {page: "1"}
        headers: {Authorization: Bearer tok-1}   # required, else 401
        responses:                       # served in turn; the last one repeats
          - {status: 200, json: {...}, headers: {...}}

Every request is recorded (method, path, query, headers, body), matched or not; an unmatched
one gets 404 `{"error": "no route"}`, so a test can assert the engine sent nothing undeclared.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    route: int | None  # index of the matched route, None when unmatched

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Stub:
    routes: list[dict[str, Any]]
    received: list[Received] = field(default_factory=list)
    served: dict[int, int] = field(default_factory=dict)  # route -> responses served
    base_url: str = ""

    def match(self, method: str, path: str, query: dict[str, str]) -> int | None:
        for i, route in enumerate(self.routes):
            if route["method"] != method or route["path"] != path:
                continue
            if all(query.get(k) == str(v) for k, v in (route.get("query") or {}).items()):
                return i
        return None

    def requests(self, method: str | None = None, path: str | None = None) -> list[Received]:
        return [r for r in self.received
                if (method is None or r.method == method) and (path is None or r.path == path)]


def _handler(stub: Stub, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (quiet tests)
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            query = dict(parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            with lock:
                index = stub.match(self.command, url.path, query)
                stub.received.append(Received(self.command, url.path, query, headers, body, index))
                if index is None:
                    status, payload, extra = 404, {"error": "no route"}, {}
                else:
                    route = stub.routes[index]
                    wanted = {k.lower(): str(v) for k, v in (route.get("headers") or {}).items()}
                    if any(headers.get(k) != v for k, v in wanted.items()):
                        status, payload, extra = 401, {"error": "unauthorized"}, {}
                    else:
                        n = stub.served.get(index, 0)
                        stub.served[index] = n + 1
                        answer = route["responses"][min(n, len(route["responses"]) - 1)]
                        status, payload = answer.get("status", 200), answer.get("json")
                        extra = answer.get("headers") or {}
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            for name, value in extra.items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler


@contextmanager
def serve(routes_file: Path) -> Iterator[Stub]:
    """Serve the routes of `routes_file` on a free loopback port until the block ends."""
    stub = Stub(routes=(yaml.safe_load(routes_file.read_text()) or {})["routes"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub, threading.Lock()))
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
