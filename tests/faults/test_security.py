"""Security, end to end on the sandbox and the real CLI.

* Secrets (every secret setting of the three systems, set through CONNECTOR_* variables, and
  the LWA access tokens issued during the run) never appear in the output of validate,
  plan, plan --format json, apply, explain, in logs, in error messages (even when the remote
  system echoes them back), in the state store or in a --record cassette.
* Order fields crafted to inject (`../`, `?`, `#`, `%2F`, a full URL, quotes, `{{ }}`, CR/LF)
  reach the systems as data: same host, same path shape, no extra header, JSON intact,
  templates never evaluated.
* Jinja sandbox escapes in rule files are refused; YAML bombs are bounded; an oversized
  response is refused; TLS certificates are verified by default.
"""

from __future__ import annotations

import json
import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import yaml
from faults_helpers import CONNECTOR, FAST_RETRY, REPO, Net, child_env, load, one, run

from connector.transport.http import new_client
from connector.project import load_config, require
from connector.sandbox import Sandbox
from connector.sandbox.records import Buyer, Line, amazon_order
from connector.sandbox.server import Request

TO_VTEX, TO_COMMERCE, TO_AMAZON = "amazon-to-vtex", "amazon-to-adobe-commerce", \
    "adobe-commerce-to-amazon"
# Distinctive secrets, with characters that URL and form encoding change.
SECRETS = {
    ("amazon", "client_secret"): "lwa-client+SECRET1/with=odd&chars",
    ("amazon", "refresh_token"): "Atzr|refresh+SECRET2/x=y&z",
    ("vtex", "app_key"): "vtexappkey-SECRET3",
    ("vtex", "app_token"): "APPTOKEN+SECRET4/abc==",
    ("adobe-commerce", "token"): "commerce-bearer+SECRET5/def",
}
EVIL = "../../x?y=1#frag%2Fhttps://evil.example/'\"{{ 7*7 }}\r\nX-Injected: 1"


def with_secrets(sandbox: Sandbox) -> Sandbox:
    """Give the sandbox's systems the distinctive credentials above."""
    sandbox.amazon.credentials["client_secret"] = SECRETS[("amazon", "client_secret")]
    sandbox.amazon.credentials["refresh_token"] = SECRETS[("amazon", "refresh_token")]
    sandbox.vtex.credentials["app_key"] = SECRETS[("vtex", "app_key")]
    sandbox.vtex.credentials["app_token"] = SECRETS[("vtex", "app_token")]
    sandbox.commerce.token = SECRETS[("adobe-commerce", "token")]
    return sandbox


def forms(secret: str) -> set[str]:
    """A secret as it may appear: raw, URL-encoded, form-encoded, JSON-escaped."""
    return {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}


def leaks(text: str, sandbox: Sandbox) -> list[str]:
    """Every secret (or issued access token) found in `text`, in any of its forms."""
    values = [*SECRETS.values(), *sandbox.amazon.tokens]
    return sorted(secret for secret in values for form in forms(secret) if form in text)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        box.amazon.feeds_api.polls_before_done = 0
        yield with_secrets(box)
    assert box.errors == []


def echo_secrets(sandbox: Sandbox) -> None:
    """Remote errors that echo the caller's credentials back, as some systems do."""
    token, app_key = SECRETS[("vtex", "app_token")], SECRETS[("vtex", "app_key")]
    sandbox.faults.fail_next("vtex", "POST", r"/cancel$", 400, count=None, body={
        "error": {"code": "1", "message": f"key {app_key} token {token} refused"}})
    refresh, client = SECRETS[("amazon", "refresh_token")], SECRETS[("amazon", "client_secret")]
    sandbox.faults.fail_next("amazon", "GET", r"/orders/113-0000003-0000004$", 400, body={
        "errors": [{"code": "InvalidInput", "message": f"grant {quote_plus(refresh)} "
                                                       f"client {client}"}]})
    bearer = SECRETS[("adobe-commerce", "token")]
    # a gateway's error page (a refusal: a 5xx would be retried with backoff, seconds a test
    # need not wait for the same page)
    sandbox.faults.fail_next("adobe-commerce", "POST", r"/cancel$", 403, count=None, body=(
        f"<html><head><title>Bearer {bearer}</title></head><body>{bearer}</body></html>"
    ).encode(), headers={"Content-Type": "text/html"})

    def echo_access_token(request: Request) -> None:
        sandbox.faults.fail_next("amazon", "POST", r"/shipmentConfirmation$", 400, body={
            "errors": [{"code": "InvalidInput",
                        "message": f"token {request.header('x-amz-access-token')}"}]})

    sandbox.faults.on_next("amazon", "POST", r"/shipmentConfirmation$", echo_access_token)


def cli(*args: str, env: dict[str, str], cwd: Path = REPO, timeout: float = 60) -> \
        subprocess.CompletedProcess[str]:
    return subprocess.run([*CONNECTOR, *args], cwd=cwd, env=env, text=True, check=False,
                          capture_output=True, timeout=timeout)


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_never_in_cli_output_state_or_cassette(sandbox: Sandbox,
                                                       tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    env = child_env(sandbox, state)
    assert all(env[f"CONNECTOR_{s.upper().replace('-', '_')}_{n.upper()}"] == v
               for (s, n), v in SECRETS.items())
    echo_secrets(sandbox)
    order = tmp_path / "order.json"
    order.write_text(json.dumps({"order": sandbox.amazon.orders["111-0000001-0000001"]}))
    target = tmp_path / "vtex.json"
    target.write_text(json.dumps(sandbox.vtex.orders["AMZ-111-0000001-0000001-01"]))
    cassette = tmp_path / "run.yaml"
    results = {
        "validate": cli("validate", env=env),
        "plan": cli("plan", env=env),
        "plan json": cli("plan", "--format", "json", env=env),
        "apply": cli("apply", "--record", str(cassette), env=env),
        "explain": cli("explain", str(order), "--flow", TO_VTEX, "--target", str(target),
                       env=env),
    }
    assert results["validate"].returncode == 0, results["validate"].stdout
    assert json.loads(results["plan json"].stdout)  # the plan was made, with requests
    apply = results["apply"]
    assert apply.returncode == 1 and "refused" in apply.stdout  # the echoing errors shown
    assert "HTML error page" in apply.stdout and "InvalidInput" in apply.stdout
    assert "***" in apply.stdout  # ... masked
    assert "would run" in results["plan"].stdout and "cancel_order" in results["explain"].stdout
    for name, result in results.items():
        assert leaks(result.stdout + result.stderr, sandbox) == [], name
    assert cassette.exists() and leaks(cassette.read_text(), sandbox) == []
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("state.db*"))
    assert b"refused" in stored  # the failures are recorded, with their reason...
    assert leaks(stored.decode("utf-8", "replace"), sandbox) == []  # ... masked


def test_secrets_never_in_logs_or_errors(sandbox: Sandbox, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    Net().install(monkeypatch)
    echo_secrets(sandbox)
    caplog.set_level(logging.DEBUG)
    summaries = run(load(), sandbox, tmp_path / "state.db")
    messages = [*caplog.messages, *(e for s in summaries for e in s.errors),
                *(a for s in summaries for a in s.attention)]
    assert any("shipmentConfirmation" in m for m in caplog.messages)  # logged at DEBUG
    assert any("refused" in m for m in messages)
    assert leaks("\n".join(messages) + caplog.text, sandbox) == []


def test_a_bad_credential_error_does_not_show_it(sandbox: Sandbox, tmp_path: Path) -> None:
    env = child_env(sandbox, tmp_path / "state.db")
    sandbox.amazon.credentials["refresh_token"] = "another-one"  # ours is now refused
    result = cli("apply", "--flow", TO_VTEX, env=env)
    assert result.returncode != 0 and "token" in result.stdout + result.stderr
    assert leaks(result.stdout + result.stderr, sandbox) == []


# --- injection through order fields ---------------------------------------------------------------


def add_evil_order(sandbox: Sandbox, status: str) -> dict[str, Any]:
    now = sandbox.clock.now() - timedelta(hours=1)
    return sandbox.amazon.add_order(amazon_order(
        EVIL, status=status, fulfilled_by="MERCHANT", created=now, updated=now,
        lines=[Line("SKU-1", 1, "10000000000001"), Line(EVIL, 1, "10000000000002")],
        buyer=Buyer(EVIL, EVIL, "evil@example.com")))


class Capture:
    """Every request the sandbox receives: headers and body, via a permanent hook."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.requests: list[Request] = []
        for system in ("amazon", "vtex", "adobe-commerce"):
            sandbox.faults.on_next(system, "*", "", self.requests.append, count=None)

    def headers(self) -> list[tuple[str, str]]:
        return [(k, v) for r in self.requests for k, v in r.headers.items()]


def test_injected_order_fields_stay_data(sandbox: Sandbox, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    Net().install(monkeypatch)
    capture = Capture(sandbox)
    add_evil_order(sandbox, "UNSHIPPED")
    summaries = run(load(), sandbox, tmp_path / "state.db", [TO_VTEX, TO_COMMERCE])
    assert not any(s.errors or s.failed for s in summaries), [s.errors for s in summaries]
    # the VTEX look-up: one path segment, percent-encoded; nothing else reached
    lookups = [r for r in capture.requests if r.system == "vtex" and "evil" in r.path]
    assert [r.path for r in lookups] == [f"/api/oms/pvt/orders/AMZ-{quote(EVIL, safe='')}-01"]
    assert lookups[0].path.count("/") == 5  # same shape as any order's
    # the Commerce look-up: the whole id as one query value
    searches = [r for r in capture.requests if r.system == "adobe-commerce" and any(
        EVIL in values for values in r.query.values())]
    assert searches and all(r.path == "/V1/orders" for r in searches)
    # the created Commerce order: the JSON structure intact, the values verbatim
    created = sandbox.commerce.order_by_increment_id(EVIL)
    assert created is not None and created["ext_order_id"] == EVIL
    assert created["customer_firstname"] == EVIL.split(" ", 1)[0]
    assert [item["sku"] for item in created["items"]] == ["SKU-1", EVIL]  # {{ }} kept as is
    assert all(r.system in ("amazon", "vtex", "adobe-commerce") for r in capture.requests)
    assert not any(k.lower() == "x-injected" or "\n" in v or "\r" in v
                   for k, v in capture.headers())


def test_header_injection_is_refused(sandbox: Sandbox, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A (custom) mapping that puts an order field in a header: a value with a line break
    is refused for that order; the others go on, with the header."""
    project = copy_project(tmp_path)
    mapping = project / "mappings" / "vtex.yaml"
    data = yaml.safe_load(mapping.read_text())
    data["orders"]["lookup"]["amazon"]["request"]["headers"] = {"X-Order": "{{ order.id }}"}
    mapping.write_text(yaml.safe_dump(data, sort_keys=False))
    Net().install(monkeypatch)
    capture = Capture(sandbox)
    add_evil_order(sandbox, "UNSHIPPED")
    summary = one(run(require(load_config(project)), sandbox, tmp_path / "state.db",
                      [TO_VTEX]))
    assert len(summary.errors) == 1 and "line break" in summary.errors[0]
    sent = [v for k, v in capture.headers() if k.lower() == "x-order"]
    assert "111-0000001-0000001" in sent and "111-0000001-0000003" in sent
    assert not any("evil" in v or "\n" in v or "\r" in v for v in sent)
    assert not any(k.lower() == "x-injected" for k, _ in capture.headers())


# --- templates, YAML, responses, TLS ---------------------------------------------------------------


def copy_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "connector.yaml", project / "connector.yaml")
    for folder in ("mappings", "rules"):
        shutil.copytree(REPO / folder, project / folder)
    return project


@pytest.mark.parametrize("escape", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
    "{{ order.update({'status': 'x'}) }}",
])
def test_jinja_sandbox_escapes_are_refused(sandbox: Sandbox, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           escape: str) -> None:
    project = copy_project(tmp_path)
    rules = project / "rules" / "amazon-to-vtex.yaml"
    data = yaml.safe_load(rules.read_text())
    invoiced = next(r for r in data["rules"] if r["id"] == "vtex-invoiced-needs-return")
    invoiced["then"] = [{"report": {"level": "attention", "message": f"x {escape}"}}]
    data.pop("tests", None)
    rules.write_text(yaml.safe_dump(data, sort_keys=False))
    Net().install(monkeypatch)
    summary = one(run(require(load_config(project)), sandbox, tmp_path / "state.db",
                      [TO_VTEX]))
    assert len(summary.errors) == 1 and "111-0000001-0000004" in summary.errors[0]
    assert summary.done > 0  # the other orders went on
    assert not (project / "PWNED").exists() and not Path("PWNED").exists()


def test_yaml_bomb_is_bounded(tmp_path: Path) -> None:
    project = copy_project(tmp_path)
    bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    bomb += [f"{c}: &{c} [{', '.join(['*' + p] * 10)}]" for p, c in zip("abcdefgh", "bcdefghi")]
    (project / "rules" / "amazon-to-vtex.yaml").write_text("\n".join(bomb) + "\n")
    started = time.monotonic()
    result = cli("validate", "--project", str(project), env=child_env_plain())
    assert time.monotonic() - started < 10
    assert result.returncode != 0 and "amazon-to-vtex.yaml" in result.stdout


def child_env_plain() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CONNECTOR_")}


def test_oversized_response_is_refused(sandbox: Sandbox, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    Net().install(monkeypatch)
    huge = b'{"orderId": "' + b"x" * (21 * 1024 * 1024) + b'"}'
    sandbox.faults.fail_next("vtex", "GET", r"AMZ-111-0000001-0000003-01$", 200, body=huge,
                             headers={"Content-Type": "application/json"})
    summary = one(run(load(), sandbox, tmp_path / "state.db", [TO_VTEX]))
    assert len(summary.errors) == 1 and "larger than" in summary.errors[0]
    assert summary.done > 0


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """An HTTPS server on loopback with a self-signed certificate; yields its base URL and
    the paths it was asked for (none, if clients verify certificates)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_tls_certificates_are_verified(sandbox: Sandbox, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch,
                                       tls_server: tuple[str, list[str]]) -> None:
    with new_client() as client:
        context = client._transport._pool._ssl_context  # type: ignore[attr-defined]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    Net(retry=FAST_RETRY).install(monkeypatch)
    url, asked = tls_server
    settings = sandbox.settings()
    settings["vtex"] = {**settings["vtex"], "base_url": f"{url}/vtex"}
    summary = one(run(load(), sandbox, tmp_path / "state.db", [TO_VTEX], settings=settings))
    assert summary.errors and all("CERTIFICATE_VERIFY_FAILED" in e for e in summary.errors)
    assert asked == []  # no request was sent over the unverified connection

