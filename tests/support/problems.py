"""Reading the problem details (RFC 9457) the APIs answer with."""

from __future__ import annotations

from typing import Any


def refused_fields(response: Any) -> list[str]:
    """The fields a 422 problem names, after checking it is one."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return [error["field"] for error in response.json()["errors"]]
