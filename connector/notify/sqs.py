"""The `sqs` transport of notifications: Amazon SQS through boto3 (`connector[sqs]`).

Only two calls: `receive_message` with long polling, and `delete_message` once the message's
orders are committed to the state store. The endpoint and region come from the queue URL
(`https://sqs.<region>.amazonaws.com/<account>/<name>`), so the URL is the only setting;
another host (an SQS-compatible server) is used as its own endpoint, in AWS_REGION's region
(us-east-1 when unset). Credentials come from the usual AWS chain (environment, profile,
role) and are never read or shown by the connector.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connector.errors import ConnectorError

_AWS_HOST = re.compile(r"^(?:sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|([a-z0-9-]+)\.queue\.amazonaws\.com)$")


@dataclass(frozen=True)
class Message:
    """One received message: its id, the handle that deletes it, its body."""

    id: str
    receipt: str
    body: str


def endpoint(url: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """(endpoint URL, region) of a queue URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.path.strip("/"):
        raise ConnectorError(f"notifications queue URL {url!r} is not an SQS queue URL "
                             "(https://sqs.<region>.amazonaws.com/<account>/<queue>)")
    match = _AWS_HOST.match(parts.hostname or "")
    region = (match.group(1) or match.group(2)) if match else (
        environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    return f"{parts.scheme}://{parts.netloc}", region


class SqsQueue:
    """One SQS queue. Errors (network, credentials, a missing queue) raise ConnectorError
    with AWS's error code and message, never a credential."""

    def __init__(self, url: str, environ: Mapping[str, str], client: Any = None) -> None:
        self.url = url
        if client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:
                raise ConnectorError("notifications over SQS need boto3: "
                                     "pip install 'connector[sqs]'") from None
            endpoint_url, region = endpoint(url, environ)
            client = boto3.client("sqs", endpoint_url=endpoint_url, region_name=region,
                                  config=Config(retries={"mode": "standard"},
                                                read_timeout=40, connect_timeout=10))
        self._client = client

    def receive(self, wait_seconds: int, *, max_messages: int = 10,
                visibility_timeout: int | None = None) -> list[Message]:
        """Up to `max_messages` messages, waiting up to `wait_seconds` (0-20) for the first."""
        args: dict[str, Any] = {"QueueUrl": self.url, "MaxNumberOfMessages": max_messages,
                                "WaitTimeSeconds": max(0, min(20, wait_seconds))}
        if visibility_timeout is not None:
            args["VisibilityTimeout"] = visibility_timeout
        answer = self._call("receiving notifications", "receive_message", args)
        return [Message(str(m.get("MessageId", "")), str(m["ReceiptHandle"]), str(m.get("Body", "")))
                for m in answer.get("Messages") or []]

    def delete(self, message: Message) -> None:
        self._call("deleting a notification", "delete_message",
                   {"QueueUrl": self.url, "ReceiptHandle": message.receipt})

    def _call(self, doing: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer: dict[str, Any] = getattr(self._client, name)(**args)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ConnectorError(f"{doing} from {self.url}: {error.get('Code', '?')}: "
                                 f"{error.get('Message', '')}".rstrip(": ")) from None
        except BotoCoreError as exc:
            raise ConnectorError(f"{doing} from {self.url}: {exc}") from None
        return answer
