"""`connector schema KIND`: print a shipped JSON Schema for editors' autocompletion."""

from __future__ import annotations

import json
from typing import TextIO

from connector import schema as schemas


def run(kind: str, out: TextIO) -> int:
    print(json.dumps(schemas.schema(kind), indent=2), file=out)
    return 0
