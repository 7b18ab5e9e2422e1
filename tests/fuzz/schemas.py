"""The three OpenAPI documents as schemathesis schemas, loaded at import (for parametrize)."""

from __future__ import annotations

from typing import Any

import schemathesis

from tests.fuzz.system import (
    AUTH_HEADERS,
    CUSTOMERS,
    PREFIXES,
    ROLES,
    SWITCH,
    USER,
    documents_only,
)

# Bounds: the whole tier runs in about a minute on 2 cores (README.md).
MAX_EXAMPLES = 25  # fuzzing phase, per operation (examples and coverage phases come on top)
SCENARIOS = 50  # stateful scenarios per service
SCENARIO_STEPS = 8  # calls per scenario at most
SEED = 20260312

# What schemathesis's positive_data_acceptance takes for "accepted" when the request fits the
# document: its default (2xx, 3xx, 401, 403, 404, 409, 429, 5xx; 5xx is not_a_server_error's
# business) and 412, which like 409 depends on the state, not on the request: a well-formed
# If-Match naming another version than the current one.
POSITIVE_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]

# Problem `code`s with which the API may refuse a request that fits its document, because the
# rule behind them cannot be written in the document (another field, another resource, the
# clock): a positive_data_acceptance failure whose response carries one is not counted. Every
# entry hides findings of its kind on every operation: name why. Empty: nothing is hidden.
ACCEPTED_REFUSALS: dict[str, str] = {
    **{
        f"R{n}": "a rule of the sales guide, judged against the activity, its customer, the clock"
        for n in range(1, 11)
    },
    "policy": "rules across fields: thresholds fall strictly (A > B > C > 0), a band's min <= max",
    "time_out_of_range": "a time must lie between 2000-01-01 and ten years ahead of now",
    "unknown_customer": "the customer must exist in the directory (another resource)",
    "invalid_range": "`to` must come after `from` (two parameters together)",
    "ends_on": "an agreement's last day is not before its first (two fields, and today)",
    "idempotency_key_reused": "a key already used for another request (the key's history)",
    "invalid_cursor": "a cursor is an opaque token only a previous page hands out",
    "file": "the CSV's header row must name the import's columns (docs in the description)",
}

CONFIG: dict[str, Any] = {
    "seed": SEED,
    # X-Dev-Roles as a plain header as well: the document's two dev schemes are alternatives
    # (one security entry each), so schemathesis applies only the first.
    "headers": AUTH_HEADERS,
    "auth": {"openapi": {"devUser": {"api_key": USER}, "devRoles": {"api_key": ROLES}}},
    "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
    "checks": {
        "enabled": True,
        "positive_data_acceptance": {"expected-statuses": POSITIVE_ACCEPTED},
        # Dev mode trusts any X-Dev-User, so no credentials are "invalid" here; that a request
        # without them is 401 is tested for every operation in tests/integration/auth.
        "ignored_auth": {"enabled": False},
    },
    # Reproductions as sent (no [Filtered] headers), bodies long enough to read.
    "output": {
        "sanitization": {"enabled": False},
        "truncation": {"max-payload-size": 2000, "max-width": 200, "max-lines": 40},
    },
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
