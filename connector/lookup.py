"""Stage 5, look up: the counterpart of a source order in the target system.

Declared per mapping (`orders.lookup.<source system>`): the VTEX order of an Amazon order by
`{affiliate}-{amazonOrderId}-01`, the Commerce order by `ext_order_id`, the Amazon order of a
Commerce order by its id. Absent is a normal answer (None), not an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.transport.client import SystemClient
from connector.errors import ConnectorError, HTTPError
from connector.normalise import normalise, search


def find_counterpart(client: SystemClient, source_system: str,
                     order: Mapping[str, Any]) -> dict[str, Any] | None:
    """The counterpart's canonical order, or None when the target has none (yet)."""
    spec = client.system.lookups.get(source_system)
    if spec is None:
        raise ConnectorError(
            f"{client.system.name}: the mapping has no orders.lookup.{source_system} "
            f"(how to find the {client.system.name} order of a {source_system} order)")
    response = client.send(spec.request, {"order": order}, idempotent=True)
    if response.status in spec.not_found_status:
        return None
    if response.status != 200:
        raise HTTPError(f"looking up the {client.system.name} order of {order.get('id')}: "
                        f"{client.describe_error(response)}")
    if response.malformed:
        # Not "absent": a garbled answer read as "no counterpart" would create it twice.
        raise HTTPError(f"looking up the {client.system.name} order of {order.get('id')}: "
                        f"{client.describe_error(response)}")
    found = search(spec.found, response.json())
    if not isinstance(found, dict) or not found:
        return None
    return normalise(client.system, found)
