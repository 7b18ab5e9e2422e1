"""The transport-neutral shape of one message on a topic.

Both transports (Kafka and in-process) move exactly this: a string key, CloudEvents
binary-mode headers and a JSON value. The codec turns contract models into it and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Headers = tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class WireMessage:
    topic: str
    key: str
    value: bytes
    headers: Headers = field(default_factory=tuple)

    def header(self, name: str) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def with_headers(self, extra: Headers) -> WireMessage:
        return WireMessage(self.topic, self.key, self.value, self.headers + extra)
