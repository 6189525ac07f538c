"""Reading document bodies: XML as data, gzip, and refusals of what is unsafe or broken."""

from __future__ import annotations

import gzip

import pytest

from connector.documents import DocumentError, decode, decompress, parse_xml

REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<AmazonEnvelope xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Header><DocumentVersion>1.02</DocumentVersion></Header>
  <Message><MessageID>1</MessageID><ProcessingReport>
    <ProcessingSummary><MessagesProcessed>3</MessagesProcessed></ProcessingSummary>
    %s
  </ProcessingReport></Message>
</AmazonEnvelope>"""
RESULT = b"<Result><MessageID>%d</MessageID><ResultCode>Error</ResultCode></Result>"


@pytest.mark.parametrize(("results", "lists", "expected"), [
    (b"", ("Result",), None),
    (RESULT % 2, ("Result",), [{"MessageID": "2", "ResultCode": "Error"}]),
    (RESULT % 2, (), {"MessageID": "2", "ResultCode": "Error"}),  # not declared: one is one
    (RESULT % 2 + RESULT % 3, (), [{"MessageID": "2", "ResultCode": "Error"},
                                   {"MessageID": "3", "ResultCode": "Error"}]),
])
def test_xml_results_read_as_declared(results: bytes, lists: tuple[str, ...],
                                      expected: object) -> None:
    data = parse_xml(REPORT % results, lists)
    report = data["Message"]["ProcessingReport"]
    assert report["ProcessingSummary"] == {"MessagesProcessed": "3"}
    assert report.get("Result") == expected


def test_attributes_and_namespaces() -> None:
    data = parse_xml(b'<r xmlns="urn:x"><a id="7">t</a><b k="v"/></r>')
    assert data == {"a": {"@id": "7", "#text": "t"}, "b": {"@k": "v"}}


@pytest.mark.parametrize("body", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><r>&a;</r>',
    b"<r><unclosed></r>",
    b"not xml",
])
def test_unsafe_or_broken_xml_is_refused(body: bytes) -> None:
    with pytest.raises(DocumentError):
        parse_xml(body)


def test_gzip_is_decompressed_when_named() -> None:
    body = REPORT % (RESULT % 1)
    assert decode(gzip.compress(body), "xml", compression="GZIP", lists=["Result"],
                  limit=10**6)["Message"]["ProcessingReport"]["Result"][0]["MessageID"] == "1"
    assert decompress(body, None, 10**6) == body  # no algorithm: as it is


@pytest.mark.parametrize(("body", "algorithm", "problem"), [
    (b"plain, not gzip", "GZIP", "not valid gzip"),
    (gzip.compress(b"x" * 5000), "GZIP", "larger than 4096"),  # a small bomb
    (b"x", "BROTLI", "unsupported compression"),
])
def test_bad_compression_is_refused(body: bytes, algorithm: str, problem: str) -> None:
    with pytest.raises(DocumentError, match=problem):
        decompress(body, algorithm, 4096)


def test_json_documents() -> None:
    assert decode(gzip.compress(b'{"a": 1}'), "json", compression="GZIP", lists=(),
                  limit=100) == {"a": 1}
    with pytest.raises(DocumentError):
        decode(b"{", "json", compression=None, lists=(), limit=100)
