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
    """A command the rules refuse.

    `code` is what clients branch on: the guide's rule when one refused (`R9`), otherwise a
    stable snake_case name (`unknown_customer`). `rule` and `field` are apart: a rule says
    why, a field says what to change (`rule="R9"`, `field="attachments"`).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        field: str | None = None,
        kind: Kind = "invalid",
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.kind = kind
        self.field = field if field is not None else _field_of(details)
        self.details = dict(details or {})
        if field is not None:
            self.details["field"] = field

    @property
    def rule(self) -> str | None:
        """The sales guide's rule that refused the command, if one did."""
        return self.code if is_rule(self.code) else None

    @property
    def status(self) -> int:
        return 409 if self.kind == "conflict" else 422


def is_rule(code: str) -> bool:
    """A guide rule's number (`R1`…`R10`), as opposed to a named code."""
    return code.startswith("R") and code[1:].isdigit()


def _field_of(details: Mapping[str, object] | None) -> str | None:
    field = (details or {}).get("field")
    return field if isinstance(field, str) else None


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
