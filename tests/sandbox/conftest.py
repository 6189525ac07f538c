"""Fixtures for the sandbox tests: a started Sandbox and authenticated clients per system.

Every server and client is closed in the fixture's teardown: pytest runs with
`filterwarnings=error`, so a leaked socket would fail the test as a ResourceWarning.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest
from sandbox_helpers import Api, amazon_token, walmart_headers, walmart_token

from connector.sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    box.start()
    try:
        yield box
    finally:
        box.stop()
    assert box.errors == []


@pytest.fixture(scope="session")
def tls() -> ssl.SSLContext:
    """One TLS context for all clients: building one per client costs ~0.2 s (CA bundle)."""
    return ssl.create_default_context()


@pytest.fixture
def client(tls: ssl.SSLContext) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10.0, verify=tls) as http:
        yield http


@pytest.fixture
def amazon(sandbox: Sandbox, client: httpx.Client) -> Api:
    return Api(client, sandbox.settings()["amazon"]["base_url"],
               {"x-amz-access-token": amazon_token(sandbox, client)})


@pytest.fixture
def vtex(sandbox: Sandbox, client: httpx.Client) -> Api:
    settings = sandbox.settings()["vtex"]
    return Api(client, settings["base_url"], {"X-VTEX-API-AppKey": settings["app_key"],
                                              "X-VTEX-API-AppToken": settings["app_token"],
                                              "Accept": "application/json"})


@pytest.fixture
def commerce(sandbox: Sandbox, client: httpx.Client) -> Api:
    settings = sandbox.settings()["adobe-commerce"]
    return Api(client, settings["base_url"], {"Authorization": f"Bearer {settings['token']}"})


@pytest.fixture
def walmart(sandbox: Sandbox, client: httpx.Client) -> Api:
    return Api(client, sandbox.settings()["walmart"]["base_url"],
               {**walmart_headers(), "Accept": "application/json",
                "WM_SEC.ACCESS_TOKEN": walmart_token(sandbox, client)})
