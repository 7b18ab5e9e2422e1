"""CRM_KAFKA_SESSION_TIMEOUT_MS / CRM_KAFKA_HEARTBEAT_INTERVAL_MS reach every group member."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import pytest
from crm_platform.messaging import kafka as kafka_adapter
from crm_platform.messaging.kafka import GroupTimeouts, KafkaConsumer
from crm_platform.messaging.transport import KafkaTransport
from crm_platform.settings import RuntimeSettings
from pydantic import ValidationError


class FakeKafkaConsumer:
    """Records what kafka-python would have been given; talks to no broker."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **settings: Any) -> None:
        self.made.append(settings)

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def subscribe(self, topics: list[str], listener: object = None) -> None:
        self.listener = listener


class FakeProducer:
    def __init__(self, **settings: Any) -> None:
        pass


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    for name in [n for n in os.environ if n.startswith("CRM_")]:
        monkeypatch.delenv(name)
    FakeKafkaConsumer.made = []
    monkeypatch.setattr(kafka_adapter, "_KafkaConsumer", FakeKafkaConsumer)
    monkeypatch.setattr(kafka_adapter, "KafkaProducer", FakeProducer)
    return FakeKafkaConsumer.made


def consumer_of(transport: KafkaTransport) -> KafkaConsumer:
    made = transport.consumer(["crm.activity.events.v1"], "calendar-sync", lambda m, d: None)
    assert isinstance(made, KafkaConsumer)
    return made


def test_the_defaults_move_a_dead_members_partitions_within_seconds(
    no_broker: list[dict[str, Any]],
) -> None:
    settings = RuntimeSettings(kafka_bootstrap="127.0.0.1:9")
    assert (settings.kafka_session_timeout_ms, settings.kafka_heartbeat_interval_ms) == (
        10_000,
        3_000,
    )
    transport = settings.transport("calendar-sync")
    assert isinstance(transport, KafkaTransport)
    consumer_of(transport)
    (given,) = no_broker
    # kafka-python's own default is 45 s.
    assert given["session_timeout_ms"] == 10_000
    assert given["heartbeat_interval_ms"] == 3_000
    assert given["enable_auto_commit"] is False


def test_the_environment_sets_both(
    no_broker: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP", "127.0.0.1:9")
    monkeypatch.setenv("CRM_KAFKA_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("CRM_KAFKA_HEARTBEAT_INTERVAL_MS", "1500")
    transport = RuntimeSettings().transport("activity")
    assert isinstance(transport, KafkaTransport)
    consumer = consumer_of(transport)
    (given,) = no_broker
    assert (given["session_timeout_ms"], given["heartbeat_interval_ms"]) == (6000, 1500)
    # The stall watchdog follows: a rebalance may wait one session timeout for a dead member.
    assert 6 < consumer.stalled_after_s <= 30


def test_a_heartbeat_not_shorter_than_the_session_is_refused_at_start(
    no_broker: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_KAFKA_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("CRM_KAFKA_HEARTBEAT_INTERVAL_MS", "6000")
    with pytest.raises(ValidationError, match="heartbeat"):
        RuntimeSettings()


def test_the_stall_watchdog_follows_the_session_timeout() -> None:
    short, long = GroupTimeouts(6_000, 2_000), GroupTimeouts(45_000, 3_000)
    assert short.stalled_after_s > short.session_timeout_ms / 1000
    assert long.stalled_after_s > long.session_timeout_ms / 1000
    assert short.stalled_after_s < long.stalled_after_s
    assert short.consumer_settings() == {"session_timeout_ms": 6000, "heartbeat_interval_ms": 2000}


def test_explicit_overrides_still_win(no_broker: list[dict[str, Any]]) -> None:
    KafkaConsumer(
        "127.0.0.1:9",
        ["t"],
        "g",
        lambda m, d: None,
        dlq=kafka_adapter.KafkaPublisher("127.0.0.1:9"),
        timeouts=GroupTimeouts(8_000, 2_000),
        session_timeout_ms=7_000,
    )
    (given,) = no_broker
    assert (given["session_timeout_ms"], given["heartbeat_interval_ms"]) == (7000, 2000)
