"""One behavioural suite for both transports: the in-process log and the real Kafka broker.

Each test is parametrised over the transport, so the embedded mode is held to exactly the
guarantees the services get from Kafka in production.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from crm_contracts.wire import WireMessage
from crm_platform.messaging import Delivery, PoisonMessage, RetryPolicy, dead_letter_topic

from tests.integration.messaging.transports import (
    InProcessTransport,
    KafkaTransport,
    Transport,
)
from tests.support.polling import wait_until

REPO = Path(__file__).resolve().parents[3]
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05)


class Crash(BaseException):
    """Stands for the process dying inside a handler: nothing after it runs, nothing commits."""


@pytest.fixture(params=["inprocess", "kafka"])
def transport(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Transport]:
    if request.param == "inprocess":
        t: Transport = InProcessTransport(tmp_path / "log.sqlite")
    else:
        t = KafkaTransport(
            request.getfixturevalue("kafka_bootstrap"), request.getfixturevalue("topic_factory")
        )
    yield t
    t.close()


def msg(topic: str, key: str, n: int) -> WireMessage:
    return WireMessage(topic, key, f'{{"n": {n}}}'.encode(), (("ce_id", str(n).encode()),))


def n_of(message: WireMessage) -> int:
    return int(message.value.decode().split(":")[1].strip(" }"))


def test_messages_of_one_key_arrive_in_publish_order(transport: Transport) -> None:
    topic = transport.new_topic()
    keys = [str(uuid.uuid4()) for _ in range(4)]
    publisher = transport.publisher()
    for batch in range(5):
        publisher.publish([msg(topic, k, batch * 10 + i) for i in range(10) for k in keys])
    received: dict[str, list[int]] = defaultdict(list)
    consumer = transport.consumer([topic], "order", lambda m, d: received[m.key].append(n_of(m)))
    wait_until(
        lambda: consumer.poll_once(0.2) >= 0 and sum(map(len, received.values())) >= 200,
        timeout=60,
        message="all 200 messages",
    )
    for key in keys:
        assert received[key] == sorted(received[key]) == list(range(50))


def test_a_consumer_that_dies_before_committing_gets_the_message_again(
    transport: Transport,
) -> None:
    topic = transport.new_topic(partitions=1)
    transport.publisher().publish([msg(topic, "k", n) for n in range(5)])
    seen: list[int] = []

    def dies_on_three(m: WireMessage, d: Delivery) -> None:
        if n_of(m) == 3:
            raise Crash
        seen.append(n_of(m))

    first = transport.consumer([topic], "redeliver", dies_on_three)
    with pytest.raises(Crash):
        wait_until(lambda: first.poll_once(0.2) > 5, timeout=60, message="the crash")
    transport.drop(first)

    second_seen: list[int] = []
    second = transport.consumer([topic], "redeliver", lambda m, d: second_seen.append(n_of(m)))
    wait_until(
        lambda: second.poll_once(0.2) >= 0 and 4 in second_seen,
        timeout=60,
        message="redelivery to the next member",
    )
    assert 3 in second_seen, "the message being handled when the consumer died came again"
    assert sorted(set(seen) | set(second_seen)) == [0, 1, 2, 3, 4]


def test_a_poison_message_goes_to_the_dead_letter_topic_and_the_next_is_processed(
    transport: Transport,
) -> None:
    topic = transport.new_topic(partitions=1)
    transport.new_topic_named(dead_letter_topic(topic))
    transport.publisher().publish([msg(topic, "k", 1), msg(topic, "k", 2), msg(topic, "k", 3)])
    handled: list[int] = []
    attempts: dict[int, int] = defaultdict(int)

    def handler(m: WireMessage, d: Delivery) -> None:
        attempts[n_of(m)] += 1
        if n_of(m) == 1:
            raise PoisonMessage("payload cannot be read")
        if n_of(m) == 2:
            raise RuntimeError("always fails")
        handled.append(n_of(m))

    consumer = transport.consumer([topic], "dlq", handler, policy=FAST)
    wait_until(
        lambda: consumer.poll_once(0.2) >= 0 and handled == [3],
        timeout=60,
        message="the message after the poison ones",
    )
    assert attempts == {1: 1, 2: FAST.max_attempts, 3: 1}

    dead = wait_until(
        lambda: transport.read_all(dead_letter_topic(topic), expect=2),
        timeout=30,
        message="two dead letters",
    )
    assert [n_of(m) for m in dead] == [1, 2]
    first, second = dead
    assert first.header("dlq_reason") == b"PoisonMessage: payload cannot be read"
    assert first.header("dlq_attempts") == b"1"
    assert first.header("ce_id") == b"1", "the original headers are kept"
    assert second.header("dlq_reason") == b"RuntimeError: always fails"
    assert second.header("dlq_attempts") == str(FAST.max_attempts).encode()
    assert second.header("dlq_original_topic") == topic.encode()
    assert second.header("dlq_original_offset") == b"1"


def test_infrastructure_errors_are_retried_until_they_pass_not_dead_lettered(
    transport: Transport,
) -> None:
    topic = transport.new_topic(partitions=1)
    transport.publisher().publish([msg(topic, "k", 7)])
    failures = iter([ConnectionError("db down")] * 6)
    handled: list[int] = []

    def handler(m: WireMessage, d: Delivery) -> None:
        error = next(failures, None)
        if error:
            raise error
        handled.append(n_of(m))

    policy = RetryPolicy(
        max_attempts=2, base_delay=0.01, max_delay=0.02, infrastructure=(ConnectionError,)
    )
    consumer = transport.consumer([topic], "infra", handler, policy=policy)
    wait_until(
        lambda: consumer.poll_once(0.2) >= 0 and handled,
        timeout=60,
        message="the message once the database is back",
    )
    assert handled == [7]
    assert transport.read_all(dead_letter_topic(topic), expect=0) == []


def test_publishing_keeps_working_across_a_broker_restart(transport: Transport) -> None:
    topic = transport.new_topic(partitions=1)
    publisher = transport.publisher()
    publisher.publish([msg(topic, "k", 1)])
    transport.restart_broker()
    publisher = transport.publisher_after_restart(publisher)
    publisher.publish([msg(topic, "k", 2)])
    got: list[int] = []
    consumer = transport.consumer([topic], "restart", lambda m, d: got.append(n_of(m)))
    wait_until(
        lambda: consumer.poll_once(0.2) >= 0 and len(got) >= 2, timeout=90, message="both messages"
    )
    assert got == [1, 2]


def test_one_stop_event_ends_a_running_consumer(transport: Transport) -> None:
    topic = transport.new_topic(partitions=1)
    stop = threading.Event()
    consumer = transport.consumer([topic], "stop", lambda m, d: None, stop=stop)
    runner = threading.Thread(target=consumer.run, args=(stop,))
    runner.start()
    stop.set()
    runner.join(timeout=30)
    assert not runner.is_alive()


@pytest.fixture(autouse=True)
def _only_restart_a_broker_we_own(request: pytest.FixtureRequest) -> None:
    if "broker_restart" in request.node.name and os.environ.get("CRM_TEST_KAFKA_BOOTSTRAP"):
        pytest.skip("an external broker is not ours to restart")
