"""Response bodies that are documents rather than JSON: XML reports, gzip-compressed downloads.

Some answers an action must read are not JSON: SP-API's feed processing report is an XML
document behind a presigned URL, gzip-compressed when `getFeedDocument` says
`compressionAlgorithm: GZIP`. A step declares how to read its body (`response:` in the
mapping); this module turns such a body into the same plain data (dicts, lists, strings)
that JMESPath reads from JSON, so `outputs`, `fail_if` and batch results need no vendor
code.

XML → data, one convention: the root element stands for the document (its tag is
dropped); an element with children becomes a dict of child tag → value, an element
without children its stripped text; a tag seen more than once under one parent becomes a
list, and so does every tag named in `lists` (a report with one `Result` still reads as a
list of one); attributes are kept under `@name`; namespaces are dropped.

Bodies are untrusted: a document with a DOCTYPE (entity declarations, the way to XML bombs
and external entities) is refused, and decompression stops at the transport's body bound.
"""

from __future__ import annotations

import gzip
import io
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable
from typing import Any

from connector.errors import DocumentError, HTTPError

#: Compression algorithms a step can name (SP-API's `compressionAlgorithm` enum).
COMPRESSIONS = ("GZIP",)
FORMATS = ("json", "xml")


def decompress(body: bytes, algorithm: str | None, limit: int) -> bytes:
    """`body` decompressed with `algorithm` (None or empty: as it is), at most `limit` bytes."""
    if not algorithm:
        return body
    if algorithm.upper() != "GZIP":
        raise DocumentError(f"unsupported compression {algorithm!r} (supported: "
                            f"{', '.join(COMPRESSIONS)})")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body)) as stream:
            data = stream.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DocumentError(f"the body is not valid gzip: {exc}") from None
    if len(data) > limit:
        raise DocumentError(f"the decompressed body is larger than {limit} bytes, refused")
    return data


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(element: ET.Element, lists: frozenset[str]) -> Any:
    children = list(element)
    attributes = {f"@{_local(k)}": v for k, v in element.attrib.items()}
    text = (element.text or "").strip()
    if not children:
        return {**attributes, "#text": text} if attributes and text else attributes or text
    grouped: dict[str, list[Any]] = {}
    for child in children:
        grouped.setdefault(_local(child.tag), []).append(_value(child, lists))
    result: dict[str, Any] = dict(attributes)
    for tag, values in grouped.items():
        result[tag] = values if tag in lists or len(values) > 1 else values[0]
    return result


def parse_xml(body: bytes, lists: Iterable[str] = ()) -> Any:
    """An XML document as data (see the module docstring for the convention)."""
    head = body[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in body.lower():
        raise DocumentError("XML with a DOCTYPE or entity declarations is refused")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise DocumentError(f"the body is not well-formed XML: {exc}") from None
    return _value(root, frozenset(lists))


def decode(body: bytes, fmt: str, *, compression: str | None, lists: Iterable[str],
           limit: int) -> Any:
    """A step's response body as data: decompressed, then parsed as its format."""
    data = decompress(body, compression, limit)
    if fmt == "xml":
        return parse_xml(data, lists)
    import json

    if not data.strip():
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise DocumentError(f"the body is not JSON: {exc}") from None
