"""Feeds API 2021-06-30 simulator, for the order feeds: POST_ORDER_ACKNOWLEDGEMENT_DATA (the
seller's cancel) and POST_ORDER_FULFILLMENT_DATA (shipment confirmations in bulk); what each
message does is `amazon_feed_messages`.

Flow (feeds_2021-06-30.json and the research notes): createFeedDocument returns a presigned
URL on this server; the client PUTs the XML there with the same Content-Type; createFeed
queues it; getFeed moves IN_QUEUE → IN_PROGRESS → DONE over successive polls (FATAL when the
XML does not parse); getFeedDocument(resultFeedDocumentId) gives a URL to the XML
ProcessingReport (gzip-compressed, `compressionAlgorithm: GZIP`, unless `compress_reports`
is off), with a `Result` for each message in error. Amazon processes feeds whether or not anyone polls, so a pending feed is
also processed when orders are next read.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import itertools
import json
import secrets
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from connector.sandbox.amazon_feed_messages import CANCEL_REASONS, MESSAGE_TYPES
from connector.sandbox.clock import amazon_time
from connector.sandbox.errors import amazon_error
from connector.sandbox.server import Mount, Request, Response, Route, route

if TYPE_CHECKING:
    from connector.sandbox.amazon import Amazon

__all__ = ["CANCEL_REASONS", "AmazonFeeds"]

URL_LIFETIME = timedelta(minutes=5)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
            f"<Message>{message}</Message><RequestId>{uuid.uuid4().hex[:16].upper()}"
            "</RequestId></Error>")
    return Response(status, body.encode(), {"Content-Type": "application/xml"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _strip_namespaces(root: ET.Element) -> ET.Element:
    for element in root.iter():
        element.tag = _local(element.tag)
    return root


class AmazonFeeds:
    """Feed documents, feeds and their processing against the Amazon orders."""

    def __init__(self, amazon: Amazon, base_url: Callable[[], str]) -> None:
        self.amazon = amazon
        self._base_url = base_url
        self.documents: dict[str, dict[str, Any]] = {}
        self.feeds: dict[str, dict[str, Any]] = {}
        self._inputs: dict[str, str] = {}
        self._polls: dict[str, int] = {}
        self._pending: list[str] = []
        self._secret = secrets.token_bytes(16)
        self._ids = itertools.count(50001019000)
        # getFeed calls before DONE: the first answers IN_QUEUE, the last one IN_PROGRESS.
        self.polls_before_done = 2
        self._fatal = 0  # a fault switch: feeds still to end FATAL (see fatal_next)
        # Processing reports are stored gzip-compressed, and getFeedDocument says so with
        # compressionAlgorithm GZIP (as Amazon may); False serves them plain.
        self.compress_reports = True
        self._rejections: dict[str, str] = {}  # a fault switch (see reject_next)
        # A fault switch: feeds stay IN_QUEUE, whoever reads (Amazon may take hours), until
        # it is turned off again.
        self.hold = False

    def fatal_next(self, count: int = 1) -> None:
        """Make the next `count` feeds processed end FATAL without applying anything, as
        when Amazon fails a whole feed (the processing report says why)."""
        self._fatal += count

    def reject_next(self, order_id: str, description: str) -> None:
        """Make the next message for `order_id` end in a report Error with `description`,
        applying nothing: Amazon refuses messages for reasons the sandbox does not model (a
        locked order, an internal error), and says so only in the processing report."""
        self._rejections[order_id] = description

    def routes(self) -> list[Route]:
        """The Feeds API operations, mounted under /amazon with the SP-API auth."""
        return [
            route("POST", "/feeds/2021-06-30/documents", self.create_document,
                  "createFeedDocument"),
            route("GET", "/feeds/2021-06-30/documents/{feedDocumentId}", self.get_document,
                  "getFeedDocument"),
            route("POST", "/feeds/2021-06-30/feeds", self.create_feed, "createFeed"),
            route("GET", "/feeds/2021-06-30/feeds", self.get_feeds, "getFeeds"),
            route("GET", "/feeds/2021-06-30/feeds/{feedId}", self.get_feed, "getFeed"),
        ]

    def upload_mount(self) -> Mount:
        """The presigned-URL side (S3 in production): authorised by the URL's signature."""
        return Mount("/amazon-uploads", "amazon",
                     [route("PUT", "/{documentId}", self.upload),
                      route("GET", "/{documentId}", self.download)],
                     lambda status, message: _s3_error(status, "InternalError", message),
                     relative_log=False)

    # -- presigned URLs -----------------------------------------------------------------
    def _sign(self, method: str, document_id: str, stamp: str) -> str:
        message = f"{method}\n{document_id}\n{stamp}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _url(self, method: str, document_id: str) -> str:
        stamp = self.amazon.clock.now().strftime("%Y%m%dT%H%M%SZ")
        return (f"{self._base_url()}/amazon-uploads/{document_id}"
                f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={stamp}"
                f"&X-Amz-Expires={int(URL_LIFETIME.total_seconds())}"
                f"&X-Amz-SignedHeaders=host&X-Amz-Signature="
                f"{self._sign(method, document_id, stamp)}")

    def _check_url(self, request: Request, method: str) -> Response | None:
        document_id = request.params["documentId"]
        stamp = request.arg("X-Amz-Date") or ""
        signature = request.arg("X-Amz-Signature") or ""
        if document_id not in self.documents or not hmac.compare_digest(
                signature, self._sign(method, document_id, stamp)):
            return _s3_error(403, "SignatureDoesNotMatch", "The request signature we "
                             "calculated does not match the signature you provided.")
        signed = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=timezone.utc)
        if signed + URL_LIFETIME < self.amazon.clock.now():
            return _s3_error(403, "AccessDenied", "Request has expired")
        return None

    def upload(self, request: Request) -> Response:
        """PUT to the presigned URL: store the feed content (Content-Type must match)."""
        refused = self._check_url(request, "PUT")
        if refused is not None:
            return refused
        document = self.documents[request.params["documentId"]]
        sent = (request.header("Content-Type") or "").replace(" ", "").lower()
        if sent != document["contentType"].replace(" ", "").lower():
            return _s3_error(403, "SignatureDoesNotMatch", "The Content-Type of the upload "
                             "must be the contentType given to createFeedDocument.")
        document["content"] = request.body
        return Response(200, b"", {"ETag": f'"{hashlib.md5(request.body).hexdigest()}"'})

    def download(self, request: Request) -> Response:
        """GET of a document URL: its content as stored."""
        refused = self._check_url(request, "GET")
        if refused is not None:
            return refused
        document = self.documents[request.params["documentId"]]
        return Response(200, document.get("content") or b"",
                        {"Content-Type": document["contentType"]})

    # -- API operations -----------------------------------------------------------------
    def create_document(self, request: Request) -> Response:
        """createFeedDocument: `{contentType}` → 201 `{feedDocumentId, url}` (PUT-signed)."""
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("contentType"), str):
            return _invalid("contentType is required")
        document_id = f"amzn1.tortuga.4.na.{uuid.uuid4()}"
        self.documents[document_id] = {"contentType": body["contentType"], "content": None}
        return Response.json(201, {"feedDocumentId": document_id,
                                   "url": self._url("PUT", document_id)})

    def get_document(self, request: Request) -> Response:
        """getFeedDocument: `{feedDocumentId, url}` (GET-signed), 404 when unknown."""
        document_id = request.params["feedDocumentId"]
        document = self.documents.get(document_id)
        if document is None:
            return _not_found(f"Feed document {document_id} not found")
        answer = {"feedDocumentId": document_id, "url": self._url("GET", document_id)}
        if document.get("compressionAlgorithm"):
            answer["compressionAlgorithm"] = document["compressionAlgorithm"]
        return Response.json(200, answer)

    def create_feed(self, request: Request) -> Response:
        """createFeed: queue an order acknowledgement feed → 202 `{feedId}`."""
        try:
            body = request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _invalid("The request body must be a CreateFeedSpecification object")
        markets = body.get("marketplaceIds")
        if not isinstance(body.get("feedType"), str) or not isinstance(
                body.get("inputFeedDocumentId"), str):
            return _invalid("feedType and inputFeedDocumentId are required")
        if not isinstance(markets, list) or not 1 <= len(markets) <= 25 or not all(
                isinstance(m, str) for m in markets):
            return _invalid("marketplaceIds must list 1 to 25 marketplace ids")
        if body["feedType"] not in MESSAGE_TYPES:
            return _invalid(f"The sandbox only simulates {' and '.join(MESSAGE_TYPES)} feeds")
        if body["inputFeedDocumentId"] not in self.documents:
            return _invalid(f"inputFeedDocumentId {body['inputFeedDocumentId']} not found")
        feed_id = str(next(self._ids))
        self.feeds[feed_id] = {"feedId": feed_id, "feedType": body["feedType"],
                               "marketplaceIds": list(markets),
                               "createdTime": amazon_time(self.amazon.clock.now()),
                               "processingStatus": "IN_QUEUE"}
        self._inputs[feed_id] = body["inputFeedDocumentId"]
        self._polls[feed_id] = 0
        self._pending.append(feed_id)
        return Response.json(202, {"feedId": feed_id})

    def get_feeds(self, request: Request) -> Response:
        """getFeeds: the feeds matching the filters (feedTypes is required with the others),
        newest first, at most pageSize (default 10, at most 100); a `nextToken` when more
        match, which is then sent as the only parameter (with any other: 400).
        Queued feeds are processed first, as for an order read: Amazon does not wait for
        anyone to poll them."""
        self.process_pending()
        token = request.arg("nextToken")
        after: list[str] | None = None
        if token is not None:
            if set(request.query) != {"nextToken"}:
                return _invalid("nextToken must be the only parameter when it is given")
            try:
                state = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
                query, after = state["query"], state["after"]
                if not isinstance(query, dict) or not isinstance(after, list):
                    raise TypeError
            except (ValueError, KeyError, TypeError, binascii.Error):
                return _invalid("Invalid nextToken")
        else:
            query = {"feedTypes": request.args("feedTypes"), "pageSize": request.arg("pageSize"),
                     "marketplaceIds": request.args("marketplaceIds"),
                     "processingStatuses": request.args("processingStatuses"),
                     "createdSince": request.arg("createdSince") or "",
                     "createdUntil": request.arg("createdUntil") or "~"}
        types = query["feedTypes"]
        if not types:
            return _invalid("feedTypes is required unless nextToken is given")
        try:
            size = int(query["pageSize"] or 10)
        except ValueError:
            size = 0
        if not 1 <= size <= 100:
            return _invalid("pageSize must be between 1 and 100")
        markets, statuses = set(query["marketplaceIds"]), set(query["processingStatuses"])
        since, until = query["createdSince"], query["createdUntil"]
        feeds = [feed for feed in self.feeds.values()
                 if feed["feedType"] in types and since <= feed["createdTime"] <= until
                 and (not markets or markets & set(feed["marketplaceIds"]))
                 and (not statuses or feed["processingStatus"] in statuses)
                 and (after is None or [feed["createdTime"], feed["feedId"]] < after)]
        feeds.sort(key=lambda feed: (feed["createdTime"], feed["feedId"]), reverse=True)
        body: dict[str, Any] = {"feeds": feeds[:size]}
        if len(feeds) > size:
            last = feeds[size - 1]
            state = {"query": query, "after": [last["createdTime"], last["feedId"]]}
            body["nextToken"] = base64.urlsafe_b64encode(
                json.dumps(state).encode()).decode().rstrip("=")
        return Response.json(200, body)

    def get_feed(self, request: Request) -> Response:
        """getFeed: one status step per poll until DONE (or FATAL)."""
        feed_id = request.params["feedId"]
        feed = self.feeds.get(feed_id)
        if feed is None:
            return _not_found(f"Feed {feed_id} not found")
        if feed_id in self._pending and not self.hold:
            self._polls[feed_id] += 1
            polls = self._polls[feed_id]
            if polls > self.polls_before_done:
                self._process(feed_id)
            elif polls == self.polls_before_done:
                feed["processingStatus"] = "IN_PROGRESS"
                feed.setdefault("processingStartTime", amazon_time(self.amazon.clock.now()))
        return Response.json(200, feed)

    def process_pending(self) -> None:
        """Process every queued feed now (Amazon does not wait for polls); none while `hold`."""
        if self.hold:
            return
        for feed_id in list(self._pending):
            self._process(feed_id)

    # -- processing ---------------------------------------------------------------------
    def _process(self, feed_id: str) -> None:
        self._pending.remove(feed_id)
        feed = self.feeds[feed_id]
        content = self.documents[self._inputs[feed_id]].get("content") or b""
        now = amazon_time(self.amazon.clock.now())
        feed.setdefault("processingStartTime", now)
        results: list[tuple[str, str, str, str | None]] = []
        kind, apply = MESSAGE_TYPES[feed["feedType"]]
        try:
            if self._fatal > 0:
                self._fatal -= 1
                raise ValueError("Injected fault: the feed could not be processed")
            root = _strip_namespaces(ET.fromstring(content))
            if root.tag != "AmazonEnvelope" or root.findtext("MessageType") != kind:
                raise ValueError(f"the document is not an AmazonEnvelope with MessageType {kind}")
        except (ET.ParseError, ValueError) as error:
            status = "FATAL"
            results.append(("0", "Error", f"XML Parsing Fatal Error: {error}", None))
            processed = 0
        else:
            status = "DONE"
            processed = 0
            for message in root.findall("Message"):
                processed += 1
                message_id = message.findtext("MessageID") or str(processed)
                element = message.find(kind)
                order_id = (element.findtext("AmazonOrderID") or "").strip() \
                    if element is not None else None
                problem = self._rejections.pop(order_id) if order_id in self._rejections \
                    else apply(self.amazon, element)
                if problem is not None:
                    results.append((message_id, "Error", problem, order_id))
        report = _report(feed_id, processed, results)
        document_id = f"amzn1.tortuga.4.na.{uuid.uuid4()}"
        self.documents[document_id] = {"contentType": "text/xml; charset=UTF-8",
                                       "content": gzip.compress(report, mtime=0)
                                       if self.compress_reports else report}
        if self.compress_reports:
            self.documents[document_id]["compressionAlgorithm"] = "GZIP"
        feed.update(processingStatus=status, processingEndTime=now,
                    resultFeedDocumentId=document_id)


def _report(feed_id: str, processed: int,
            results: list[tuple[str, str, str, str | None]]) -> bytes:
    """The XML ProcessingReport: summary counts and a Result per message in error."""
    envelope = ET.Element("AmazonEnvelope", {
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": "amzn-envelope.xsd"})
    header = ET.SubElement(envelope, "Header")
    ET.SubElement(header, "DocumentVersion").text = "1.02"
    ET.SubElement(header, "MerchantIdentifier").text = "SANDBOX-SELLER"
    ET.SubElement(envelope, "MessageType").text = "ProcessingReport"
    message = ET.SubElement(envelope, "Message")
    ET.SubElement(message, "MessageID").text = "1"
    report = ET.SubElement(message, "ProcessingReport")
    ET.SubElement(report, "DocumentTransactionID").text = feed_id
    ET.SubElement(report, "StatusCode").text = "Complete"
    summary = ET.SubElement(report, "ProcessingSummary")
    errors = len({r[0] for r in results if r[1] == "Error"}) if processed else 0
    for name, value in (("MessagesProcessed", processed),
                        ("MessagesSuccessful", processed - errors),
                        ("MessagesWithError", errors), ("MessagesWithWarning", 0)):
        ET.SubElement(summary, name).text = str(value)
    for message_id, code, description, order_id in results:
        result = ET.SubElement(report, "Result")
        ET.SubElement(result, "MessageID").text = message_id
        ET.SubElement(result, "ResultCode").text = code
        ET.SubElement(result, "ResultDescription").text = description
        if order_id:
            info = ET.SubElement(result, "AdditionalInfo")
            ET.SubElement(info, "AmazonOrderID").text = order_id
    return ET.tostring(envelope, encoding="utf-8", xml_declaration=True)


def _invalid(message: str) -> Response:
    return amazon_error(400, "InvalidInput", message)


def _not_found(message: str) -> Response:
    return amazon_error(404, "NotFound", message)
