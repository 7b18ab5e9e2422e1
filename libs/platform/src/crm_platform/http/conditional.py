"""Optimistic concurrency and retries over HTTP: ETag / If-Match and Idempotency-Key.

The ETag of a resource is its aggregate version in quotes (`"3"`). A command sent with
`If-Match: "3"` applies only to version 3 (412 otherwise), so two people editing the same
activity cannot overwrite each other unknowingly.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import Header

from crm_platform.http.errors import ApiError

IDEMPOTENCY_KEY_MAX: Final = 200
# Visible ASCII, spaces only inside: what every HTTP client can send and log unchanged.
IDEMPOTENCY_KEY_PATTERN: Final = r"^[\x21-\x7E]([\x20-\x7E]{0,198}[\x21-\x7E])?$"
IF_MATCH_PATTERN: Final = r'^[ \t]*(\*|(W/)?"?[0-9]{1,18}"?)[ \t]*$'
_ETAG = re.compile(r'^\s*(W/)?"?(\d{1,18})"?\s*$')
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        description='The ETag from a GET, e.g. `"3"`: the change applies to that version only '
        "(412 otherwise). A weak tag never matches (RFC 9110 compares strongly).",
    ),
]
IdemKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Retry-safe key for this request: a repeat gets the first answer.",
    ),
]


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
    if match.group(1):
        raise ApiError(
            412,
            "stale_version",
            "If-Match compares strongly: a weak ETag never matches; send the ETag of a GET",
            details={"field": "header.If-Match"},
        )
    return int(match.group(2))


def idempotency_key(header: str | None) -> str | None:
    if header is None:
        return None
    key = header
    if not _IDEMPOTENCY_KEY.match(key):
        raise ApiError(
            422,
            "invalid_idempotency_key",
            f"Idempotency-Key must be 1-{IDEMPOTENCY_KEY_MAX} visible ASCII characters",
            details={"field": "header.Idempotency-Key"},
        )
    return key
