"""The three OpenAPI documents as schemathesis schemas, loaded at import (for parametrize)."""

from __future__ import annotations

from typing import Any

import schemathesis

from tests.fuzz.system import AUTH_HEADERS, CUSTOMERS, PREFIXES, SWITCH, USER, documents_only

# Bounds: the whole tier runs in about a minute on 2 cores (README.md).
MAX_EXAMPLES = 15  # fuzzing phase, per operation (examples and coverage phases come on top)
SCENARIOS = 30  # stateful scenarios per service
SCENARIO_STEPS = 6  # calls per scenario at most
SEED = 20260312

CONFIG: dict[str, Any] = {
    "seed": SEED,
    "headers": AUTH_HEADERS,
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {"enabled": True},
    "output": {"sanitization": {"enabled": False}},
    # Most generated customer ids and owners name what the session seeded (system.CUSTOMERS),
    # so requests get past "unknown customer" to the rules behind it; the rest stay random.
    "dictionaries": {
        "customers": {"values": sorted(CUSTOMERS)},
        "owners": {"values": [USER]},
    },
    "parameters": {
        f"{location}.{name}": {"dictionary": dictionary, "probability": 0.8}
        for location in ("body", "query", "path")
        for name, dictionary in (("customer_id", "customers"), ("owner", "owners"))
    },
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
