"""Helpers shared by the sandbox tests (imported by conftest and the test modules)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from connector.sandbox import Sandbox


class Api:
    """An httpx client bound to one system's base URL and auth headers."""

    def __init__(self, client: httpx.Client, base: str, headers: dict[str, str]) -> None:
        self.client = client
        self.base = base
        self.headers = headers

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(self.base + path, headers=self.headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.post(self.base + path, headers=self.headers, **kwargs)


def amazon_token(sandbox: Sandbox, client: httpx.Client) -> str:
    """Exchange the sandbox's refresh token for an access token."""
    settings = sandbox.settings()["amazon"]
    response = client.post(settings["token_url"], data={
        "grant_type": "refresh_token", "refresh_token": settings["refresh_token"],
        "client_id": settings["client_id"], "client_secret": settings["client_secret"]})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def walmart_headers(service: str = "Walmart Marketplace") -> dict[str, str]:
    """The headers Walmart wants on every call (a fresh correlation id)."""
    return {"WM_SVC.NAME": service, "WM_QOS.CORRELATION_ID": str(uuid.uuid4())}


def walmart_token(sandbox: Sandbox, client: httpx.Client) -> str:
    """Exchange the sandbox's client id and secret for an access token (client credentials)."""
    settings = sandbox.settings()["walmart"]
    basic = base64.b64encode(f"{settings['client_id']}:{settings['client_secret']}".encode())
    response = client.post(settings["base_url"] + "/v3/token",
                           data={"grant_type": "client_credentials"},
                           headers={**walmart_headers(),
                                    "Authorization": f"Basic {basic.decode()}"})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])
