"""The session fixtures hand out a real PostgreSQL and a real Kafka broker, isolated per test."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient


def _in_schema(dsn: str, schema: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, options=f"-c search_path={schema}")


def test_postgres_answers(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute("select version()").fetchone()
    assert row is not None
    assert row[0].startswith("PostgreSQL ")


@pytest.mark.parametrize("run", [1, 2])
def test_every_test_gets_a_fresh_schema(postgres_dsn: str, pg_schema: str, run: int) -> None:
    assert re.fullmatch(r"t_[0-9a-f]{12}", pg_schema)
    with _in_schema(postgres_dsn, pg_schema) as conn:
        # The same table name in every run: with a shared schema the second run would fail here.
        conn.execute("create table probe (run int not null)")
        conn.execute("insert into probe values (%s)", (run,))
        assert conn.execute("select current_schema()").fetchone() == (pg_schema,)
        assert conn.execute("select array_agg(run) from probe").fetchone() == ([run],)


def test_two_schemas_do_not_see_each_others_tables(
    postgres_dsn: str, pg_schema: str, pg_schema_factory: Callable[[], str]
) -> None:
    other = pg_schema_factory()
    assert other != pg_schema
    with _in_schema(postgres_dsn, pg_schema) as mine, _in_schema(postgres_dsn, other) as theirs:
        mine.execute("create table probe (owner text)")
        mine.execute("insert into probe values ('mine')")
        theirs.execute("create table probe (owner text)")
        theirs.execute("insert into probe values ('theirs')")
        theirs.execute("create table only_theirs (id int)")

        assert mine.execute("select owner from probe").fetchall() == [("mine",)]
        assert theirs.execute("select owner from probe").fetchall() == [("theirs",)]
        assert mine.execute("select to_regclass('only_theirs')").fetchone() == (None,)
        assert theirs.execute("select to_regclass('only_theirs')").fetchone() is not None


def test_admin_lists_topics_and_sees_a_new_topic(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("infra", partitions=2)
    assert re.fullmatch(r"infra\.[0-9a-f]{10}", topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="test-local-infra")
    try:
        assert topic in admin.list_topics()
        (described,) = admin.describe_topics([topic])
    finally:
        admin.close()
    assert len(described["partitions"]) == 2
    assert all(p["leader_id"] >= 0 for p in described["partitions"])


def test_produce_and_consume_one_message(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("roundtrip")
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    try:
        sent = producer.send(
            topic, key=b"k-1", value=b'{"n": 1}', headers=[("ce_type", b"crm.test.v1")]
        ).get(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    partition = TopicPartition(topic, sent.partition)
    records = []
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        deadline = time.monotonic() + 30
        while not records and time.monotonic() < deadline:
            records = consumer.poll(timeout_ms=500).get(partition, [])
    finally:
        consumer.close()

    assert len(records) == 1
    (record,) = records
    assert (record.key, record.value, record.offset) == (b"k-1", b'{"n": 1}', sent.offset)
    assert ("ce_type", b"crm.test.v1") in list(record.headers)


def test_a_consumer_group_reads_and_commits(
    kafka_bootstrap: str, topic_factory: Callable[..., str]
) -> None:
    topic = topic_factory("group", partitions=1)
    group = f"g.{topic}"
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        producer.send(topic, key=b"k", value=b"v").get(timeout=30)
    finally:
        producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    got = []
    try:
        deadline = time.monotonic() + 60
        while not got and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                got.extend(batch)
        consumer.commit()
        committed = consumer.committed(TopicPartition(topic, 0))
    finally:
        consumer.close()
    assert [r.value for r in got] == [b"v"]
    assert committed == 1
