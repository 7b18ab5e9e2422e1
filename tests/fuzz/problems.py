"""What every error answer must look like: RFC 9457 problem details plus our `code`."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM = "application/problem+json"
MEMBERS = ("type", "title", "status", "detail", "instance", "code")


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    request = response.request
    where = f"{request.method} {request.url.raw_path.decode(errors='replace')}"
    assert response.status_code == status, (
        f"{where}: expected {status}, got {response.status_code}: {response.text[:500]}"
    )
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == PROBLEM, (
        f"{where}: expected {PROBLEM}, got {content_type!r}: {response.text[:500]}"
    )
    body = response.json()
    assert isinstance(body, dict), f"{where}: problem is not an object: {body!r}"
    missing = [m for m in MEMBERS if m not in body]
    assert not missing, f"{where}: problem lacks {missing}: {body!r}"
    assert body["status"] == status, f"{where}: problem status {body['status']!r}: {body!r}"
    for member in ("type", "title", "detail", "instance", "code"):
        assert isinstance(body[member], str), f"{where}: problem {member} not a string: {body!r}"
        assert body[member], f"{where}: problem {member} is empty: {body!r}"
    return body


def allowed(response: httpx.Response) -> set[str]:
    """The methods an `Allow` header names (HEAD and OPTIONS aside: may be implicit)."""
    names = {m.strip().upper() for m in response.headers.get("allow", "").split(",")}
    return names - {"", "HEAD", "OPTIONS"}
