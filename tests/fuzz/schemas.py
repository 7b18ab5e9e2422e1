"""The three OpenAPI documents as schemathesis schemas, loaded at import (for parametrize)."""

from __future__ import annotations

from typing import Any

import schemathesis

from tests.fuzz.system import AUTH_HEADERS, PREFIXES, SWITCH, documents_only

MAX_EXAMPLES = 15
SEED = 20260312

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "headers": AUTH_HEADERS,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {"enabled": True},
    "output": {"sanitization": {"enabled": False}},
}


def load() -> dict[str, Any]:
    schemas = {}
    with documents_only() as docs:
        SWITCH.target = docs.root
        try:
            for prefix in PREFIXES:
                schemas[prefix] = schemathesis.openapi.from_asgi(
                    f"/{prefix}/openapi.json",
                    SWITCH,
                    config=schemathesis.Config.from_dict(CONFIG),
                )
        finally:
            SWITCH.target = None
    return schemas


SCHEMAS = load()
