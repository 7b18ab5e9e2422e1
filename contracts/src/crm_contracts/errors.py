"""Why a message could not be decoded.

Every error here means the message itself is unusable (a poison message): retrying cannot
help, so consumers route it to ``dead_letter(topic)`` instead of blocking the partition.
"""

from __future__ import annotations


class ContractError(Exception):
    """A message does not honour the contract."""


class InvalidEnvelope(ContractError):
    """The CloudEvents headers are missing, malformed or inconsistent."""

    def __init__(self, header: str, problem: str) -> None:
        super().__init__(f"header {header!r}: {problem}")
        self.header = header


class MissingHeader(InvalidEnvelope):
    def __init__(self, header: str) -> None:
        super().__init__(header, "missing")


class InvalidHeader(InvalidEnvelope):
    """A header is present but its value is not acceptable."""


class UnsupportedSpecVersion(InvalidEnvelope):
    def __init__(self, specversion: str) -> None:
        super().__init__("ce_specversion", f"{specversion!r} is not supported, expected '1.0'")
        self.specversion = specversion


class UnknownEventType(ContractError):
    """No version of this event type is known to this build of the contracts."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"unknown event type {event_type!r}")
        self.event_type = event_type


class UnsupportedVersion(ContractError):
    """The event is known, but not in this version (e.g. a consumer older than the producer)."""

    def __init__(self, event_type: str, supported: tuple[str, ...]) -> None:
        super().__init__(
            f"unsupported version of event type {event_type!r}; supported: {', '.join(supported)}"
        )
        self.event_type = event_type
        self.supported = supported


class InvalidMessage(ContractError):
    """The value is not JSON, or does not validate against the event's model."""

    def __init__(self, event_type: str, problem: str) -> None:
        super().__init__(f"invalid {event_type!r} payload: {problem}")
        self.event_type = event_type
        self.problem = problem
