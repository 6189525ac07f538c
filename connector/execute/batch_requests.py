"""The requests a batch sends: one of its steps, and the recover read that finds out whether
an effect whose answer was lost started anything (on every page of it)."""

from __future__ import annotations

import dataclasses
from typing import Any

from connector.errors import ConnectorError, HTTPError, LeaseLost, StepFailed
from connector.execute import send_step
from connector.fetch import MAX_PAGES, literal_query
from connector.model import Batch, Step
from connector.transport.client import SystemClient
from connector.transport.http import AmbiguousOutcome

_NEXT_PAGE = "\x00next_page"  # the recover step's extra output: a name no mapping can use


def send(client: SystemClient, step: Step, context: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A step's outputs and whether it is finished; a failure the batch cannot place is a
    retryable StepFailed (its message redacted)."""
    try:
        return send_step(client, step, context)
    except (HTTPError, ConnectorError) as exc:
        if isinstance(exc, (StepFailed, AmbiguousOutcome, LeaseLost)):
            raise
        raise StepFailed(client.redact(str(exc)), retryable=True) from None


def recovered(client: SystemClient, batch: Batch, step: Step, context: dict[str, Any]) -> bool:
    """Whether the `recover` read is done: on every page when it is paged (`recover_pages`;
    the effect's work may be on any page, e.g. past the first 100 feeds since the batch
    opened), each page's token sent back as the mapping says."""
    pages = batch.recover_pages
    if pages is None:
        return send(client, step, context)[1]
    paged = dataclasses.replace(step, outputs={**step.outputs, _NEXT_PAGE: pages.next_token})
    token: Any = None
    for _ in range(MAX_PAGES):
        literal = {} if token is None else {pages.token_param: str(token)}
        outputs, finished = send(client, paged, {**context, "literal": literal})
        if not finished:
            return False
        previous, token = token, outputs.get(_NEXT_PAGE)
        if not token:
            return True
        if token == previous:
            raise StepFailed(f"step {step.name}: the same next-page token twice", retryable=True)
        query = {} if pages.token_alone else dict(step.request.query)
        query.update(literal_query({pages.token_param: str(token)}))  # remote data
        paged = dataclasses.replace(paged, request=dataclasses.replace(step.request, query=query))
    raise StepFailed(f"step {step.name}: more than {MAX_PAGES} pages", retryable=True)
