"""Why a command is refused, shared by every service, and how the HTTP layer answers it.

`DomainError` comes from the rules (a rule such as `R8`, or a field): `invalid` input → 422,
a `conflict` with the current state → 409. `CommandRefused` comes before any rule is asked:
an unknown id (404), a caller who may not (403), a stale `If-Match` (412), a lost race (409).
Plain Python, so domain modules may raise these without depending on a framework.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

Kind = Literal["invalid", "conflict"]


class DomainError(Exception):
    """A command the rules refuse. `code` is stable (a rule such as `R8`, or a field name)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        kind: Kind = "invalid",
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.details = dict(details or {})

    @property
    def status(self) -> int:
        return 409 if self.kind == "conflict" else 422


class CommandRefused(Exception):
    """A command refused before any rule was asked: unknown id, not allowed, stale version."""

    status = 400
    code = "refused"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(CommandRefused):
    status, code = 404, "not_found"


class Forbidden(CommandRefused):
    status, code = 403, "forbidden"


class StaleVersion(CommandRefused):
    status, code = 412, "stale_version"


class LostRace(CommandRefused):
    """Someone else saved in between; read again and retry."""

    status, code = 409, "concurrent_modification"
