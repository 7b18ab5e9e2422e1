"""Optimistic concurrency and retries over HTTP: ETag / If-Match and Idempotency-Key.

The ETag of a resource is its aggregate version in quotes (`"3"`). A command sent with
`If-Match: "3"` applies only to version 3 (412 otherwise), so two people editing the same
activity cannot overwrite each other unknowingly.
"""

from __future__ import annotations

import re

from crm_platform.http.errors import ApiError

IDEMPOTENCY_KEY_MAX = 200
_ETAG = re.compile(r'^\s*(?:W/)?"?(\d{1,18})"?\s*$')


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None) -> int | None:
    """The version an `If-Match` header asks for; None when absent or `*`."""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _ETAG.match(if_match)
    if match is None:
        raise ApiError(
            422,
            "invalid_if_match",
            'If-Match must be an ETag from a GET, e.g. "3"',
            details={"field": "header.If-Match"},
        )
    return int(match.group(1))


def idempotency_key(header: str | None) -> str | None:
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > IDEMPOTENCY_KEY_MAX or not key.isprintable():
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} printable characters",
            details={"field": "header.Idempotency-Key"},
        )
    return key
