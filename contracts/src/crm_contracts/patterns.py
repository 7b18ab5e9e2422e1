"""The character rules of the values we exchange, as plain regular expressions.

Kept free of pydantic so domain modules can check values by the same rules as the contracts
(`crm_contracts.primitives` builds its types from these) without importing a framework.
Each pattern is valid in Python, in pydantic's Rust engine and in JSON Schema (ECMA 262).
"""

from __future__ import annotations

import re
from typing import Final

TEXT_PATTERN: Final = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uFFFE\uFFFF]*$"
"""Text as people type it: tab, line feed and carriage return, but no other control
character (a NUL cannot be stored in PostgreSQL and breaks feeds and other consumers)."""

_CONTROLS: Final = r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uFFFE\uFFFF"
_SPACES: Final = r"\x09\x0A\x0D\x20\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF"
NAME_PATTERN: Final = rf"^[^{_CONTROLS}]*[^{_CONTROLS}{_SPACES}][^{_CONTROLS}]*$"
"""Text that names something: as `TEXT_PATTERN`, with at least one character not a space."""

ID_PATTERN: Final = r"^[A-Za-z0-9_~@+-][A-Za-z0-9._~:@+-]*$"
"""Ids we are given (customers): ASCII letters, digits and `. _ ~ : @ + -`, not starting with
a dot. Such an id is one URL path segment as it is: no `/`, no `..`, nothing to encode."""

# Spelled out rather than `\s`, which means one set in JSON Schema (ECMA 262) and another in
# Python and Rust: controls, spaces and separators, and the byte-order mark.
_NOT_IN_MAILBOX: Final = (
    r"@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\uFEFF"
)
MAILBOX_PATTERN: Final = rf"^[^{_NOT_IN_MAILBOX}]+@[^{_NOT_IN_MAILBOX}]+\.[^{_NOT_IN_MAILBOX}]+$"
"""An e-mail address as Entra ID and Outlook name a user: `name@domain.tld`."""

_TEXT: Final = re.compile(TEXT_PATTERN)
_ID: Final = re.compile(ID_PATTERN)
_MAILBOX: Final = re.compile(MAILBOX_PATTERN)


def is_text(value: str) -> bool:
    """No control characters but tab and line breaks, and no lone surrogate halves."""
    if not _TEXT.match(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def is_id(value: str) -> bool:
    return bool(_ID.match(value))


def is_mailbox(value: str) -> bool:
    return bool(_MAILBOX.match(value))
