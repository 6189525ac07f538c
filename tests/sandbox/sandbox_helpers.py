"""Helpers shared by the sandbox tests (imported by conftest and the test modules)."""

from __future__ import annotations

import base64
import gzip
import uuid
import xml.etree.ElementTree as ET
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


# -- order feeds (Feeds API 2021-06-30) -------------------------------------------------
def envelope(message_type: str, messages: list[str]) -> bytes:
    """An AmazonEnvelope of `message_type` around the given <Message> bodies, numbered 1…n."""
    body = "".join(f"<Message><MessageID>{number}</MessageID>{message}</Message>"
                   for number, message in enumerate(messages, 1))
    return ('<?xml version="1.0" encoding="UTF-8"?><AmazonEnvelope '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xsi:noNamespaceSchemaLocation="amzn-envelope.xsd"><Header><DocumentVersion>1.01'
            '</DocumentVersion><MerchantIdentifier>SANDBOX</MerchantIdentifier></Header>'
            f"<MessageType>{message_type}</MessageType>{body}</AmazonEnvelope>").encode()


def submit_feed(amazon: Api, content: bytes,
                feed_type: str = "POST_ORDER_ACKNOWLEDGEMENT_DATA") -> str:
    """createFeedDocument, the upload to its presigned URL, createFeed: the feedId."""
    created = amazon.post("/feeds/2021-06-30/documents",
                          json={"contentType": "text/xml; charset=UTF-8"})
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["url"].startswith(amazon.base.rsplit("/", 1)[0] + "/amazon-uploads/")
    upload = amazon.client.put(document["url"], content=content,
                               headers={"Content-Type": "text/xml; charset=UTF-8"})
    assert upload.status_code == 200, upload.text
    feed = amazon.post("/feeds/2021-06-30/feeds", json={
        "feedType": feed_type, "marketplaceIds": ["ATVPDKIKX0DER"],
        "inputFeedDocumentId": document["feedDocumentId"]})
    assert feed.status_code == 202, feed.text
    return str(feed.json()["feedId"])


def poll_feed(amazon: Api, feed_id: str) -> tuple[list[str], dict[str, Any]]:
    """getFeed until the feed is no longer queued or in progress: the statuses seen, the feed."""
    statuses: list[str] = []
    while not statuses or statuses[-1] in ("IN_QUEUE", "IN_PROGRESS"):
        feed = amazon.get(f"/feeds/2021-06-30/feeds/{feed_id}").json()
        statuses.append(feed["processingStatus"])
    return statuses, feed


def feed_report(amazon: Api, document_id: str) -> ET.Element:
    """The processing report of a feed (getFeedDocument, its URL, gunzipped)."""
    document = amazon.get(f"/feeds/2021-06-30/documents/{document_id}").json()
    response = amazon.client.get(document["url"])
    assert response.status_code == 200
    assert document["compressionAlgorithm"] == "GZIP"  # the sandbox's default
    return ET.fromstring(gzip.decompress(response.content))
