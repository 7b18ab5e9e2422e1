"""Root conftest for every test tier: real PostgreSQL and Kafka for the integration tiers.

Session fixtures ``postgres_dsn`` and ``kafka_bootstrap`` (and ``postgres_server`` /
``kafka_server``, which also say where the server came from) find a server in this order:

1. ``CRM_TEST_POSTGRES_DSN`` / ``CRM_TEST_KAFKA_BOOTSTRAP``: an external server, used as is;
2. testcontainers, when a Docker engine answers;
3. the local processes of ``deploy/local/postgres.sh up`` / ``deploy/local/kafka.sh up``
   (what CI here uses). They are reused across runs and left running at the end of the
   session; ``deploy/local/*.sh down`` stops them.

If none works the requesting tests are skipped, or fail loudly when ``CI`` is set. Servers start
lazily, only when a test asks for them, so ``tests/unit`` never starts anything.

Tests that use these fixtures belong in ``tests/integration`` or ``tests/e2e``; they get the
``postgres`` / ``kafka`` markers automatically (``-m "not kafka"`` deselects them). Isolation is
by unique names, not cleanup: ``pg_schema`` gives each test its own schema and
``topic_factory`` its own topics.
"""

from __future__ import annotations

import os
import subprocess
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from hypothesis import settings

# No time limit per example: Hypothesis' default (200 ms) is a timed assertion, and an example
# that talks to PostgreSQL on a busy 2-core CI machine can exceed it and fail for nothing.
# Speed is measured in `make bench`.
settings.register_profile("crm", deadline=None)
settings.load_profile("crm")

REPO = Path(__file__).resolve().parent.parent
LOCAL_SCRIPTS = REPO / "deploy" / "local"
INFRA_TIERS = ("integration", "e2e", "faults")

POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_dsn", "pg_schema", "pg_schema_factory"})
KAFKA_FIXTURES = frozenset({"kafka_server", "kafka_bootstrap", "topic_factory"})

DOCKER_PING_TIMEOUT_S = 3
LOCAL_UP_TIMEOUT_S = 900  # a first Kafka `up` downloads the broker's jars with Maven


@dataclass(frozen=True)
class InfraServer:
    """A server for the tests: ``address`` is a DSN or a bootstrap ``host:port``."""

    address: str
    source: str  # "env" | "testcontainers" | "local"


# --------------------------------------------------------------------------- markers, placement

_MISPLACED = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_dir = REPO / "tests"
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        uses = []
        if names & POSTGRES_FIXTURES:
            item.add_marker(pytest.mark.postgres)
            uses.append("PostgreSQL")
        if names & KAFKA_FIXTURES:
            item.add_marker(pytest.mark.kafka)
            uses.append("Kafka")
        if not uses:
            continue
        try:
            tier = item.path.resolve().relative_to(tests_dir).parts[0]
        except ValueError:
            tier = ""
        if tier not in INFRA_TIERS:
            item.stash[_MISPLACED] = " and ".join(uses)


def pytest_runtest_setup(item: pytest.Item) -> None:
    uses = item.stash.get(_MISPLACED, None)
    if uses:
        pytest.fail(
            f"{item.nodeid} uses real {uses}: such tests live in tests/integration or tests/e2e",
            pytrace=False,
        )


# --------------------------------------------------------------------------- no silent skips

# Test ids that needed a server and were skipped (one pytest process, one session).
_skipped_needing_servers: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and {"postgres", "kafka"} & set(report.keywords):
        _skipped_needing_servers.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A run that skipped tests needing PostgreSQL or Kafka did not test what it claims: fail.

    Deselect them instead (`-m "not postgres and not kafka"`) to run without servers.
    """
    skipped = _skipped_needing_servers
    if not skipped:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"{len(skipped)} test(s) needing PostgreSQL or Kafka were skipped, so this run "
            "fails; start the servers (make infra) or deselect them with "
            '-m "not postgres and not kafka". First: ' + ", ".join(skipped[:5]),
            red=True,
        )
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


# --------------------------------------------------------------------------- finding servers


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: integration tests never skip in CI)", pytrace=False)
    pytest.skip(reason)


_docker_answers: bool | None = None


def _docker_engine_answers() -> bool:
    global _docker_answers
    if _docker_answers is None:
        try:
            import docker

            client = docker.from_env(timeout=DOCKER_PING_TIMEOUT_S)
            try:
                _docker_answers = bool(client.ping())
            finally:
                client.close()
        except Exception:
            _docker_answers = False
    return _docker_answers


def _local_up(script: str) -> str:
    """Run ``deploy/local/<script> up``; return the last stdout line or raise RuntimeError."""
    cmd = ["bash", str(LOCAL_SCRIPTS / script), "up"]
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=LOCAL_UP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"`{script} up` could not run: {exc}") from exc
    lines = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-60:])
        raise RuntimeError(f"`{script} up` exited {proc.returncode}:\n{tail}")
    return lines[-1]


def _stop_container(container: Any) -> None:
    try:
        container.stop()
    except Exception as exc:
        warnings.warn(f"could not stop test container: {exc!r}", stacklevel=1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[InfraServer]:
    external = os.environ.get("CRM_TEST_POSTGRES_DSN")
    if external:
        yield InfraServer(external, "env")
        return
    problems: list[str] = []
    if _docker_engine_answers():
        try:
            try:
                from testcontainers.community.postgres import PostgresContainer
            except ImportError:
                from testcontainers.postgres import PostgresContainer
            image = os.environ.get("CRM_TEST_POSTGRES_IMAGE", "postgres:15-alpine")
            container = PostgresContainer(
                image, username="crm", password="crm", dbname="crm", driver=None
            )
            container.start()
        except Exception as exc:
            problems.append(f"testcontainers PostgreSQL failed: {exc!r}")
        else:
            try:
                yield InfraServer(container.get_connection_url(), "testcontainers")
            finally:
                _stop_container(container)
            return
    dsn: str | None = None
    try:
        dsn = _local_up("postgres.sh")
    except RuntimeError as exc:
        problems.append(str(exc))
    if dsn is None:
        _unavailable("no PostgreSQL for the integration tests: " + "\n".join(problems))
    yield InfraServer(dsn, "local")  # left running on purpose: reused by the next run


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[InfraServer]:
    external = os.environ.get("CRM_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield InfraServer(external, "env")
        return
    problems: list[str] = []
    if _docker_engine_answers():
        try:
            try:
                from testcontainers.community.kafka import KafkaContainer
            except ImportError:
                from testcontainers.kafka import KafkaContainer
            image = os.environ.get("CRM_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.0")
            container = KafkaContainer(image).with_kraft()
            container.start()
        except Exception as exc:
            problems.append(f"testcontainers Kafka failed: {exc!r}")
        else:
            try:
                yield InfraServer(container.get_bootstrap_server(), "testcontainers")
            finally:
                _stop_container(container)
            return
    bootstrap: str | None = None
    try:
        bootstrap = _local_up("kafka.sh")
    except RuntimeError as exc:
        problems.append(str(exc))
    if bootstrap is None:
        _unavailable("no Kafka broker for the integration tests: " + "\n".join(problems))
    yield InfraServer(bootstrap, "local")  # left running on purpose: reused by the next run


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: InfraServer) -> str:
    """``postgresql://user:password@host:port/db`` of a real PostgreSQL 15 for this session."""
    return postgres_server.address


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: InfraServer) -> str:
    """``host:port`` of a real Kafka broker for this session."""
    return kafka_server.address


# --------------------------------------------------------------------------- per-test isolation


@pytest.fixture
def pg_schema_factory(postgres_dsn: str) -> Iterator[Callable[[], str]]:
    """``new_schema() -> name``: a fresh schema ``t_<12 hex>``; all dropped CASCADE afterwards."""
    import psycopg
    from psycopg import sql

    created: list[str] = []

    def new_schema() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
        created.append(name)
        return name

    yield new_schema

    if not created:
        return
    try:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            # A connection the test leaked may still hold locks: do not hang on them.
            conn.execute("set lock_timeout = '10s'")
            for name in reversed(created):
                conn.execute(
                    sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name))
                )
    except Exception as exc:
        warnings.warn(f"could not drop test schemas {created}: {exc!r}", stacklevel=1)


@pytest.fixture
def pg_schema(pg_schema_factory: Callable[[], str]) -> str:
    """The name of a schema of this test's own (``t_<12 hex>``), dropped CASCADE afterwards.

    Connect with ``options=f"-c search_path={pg_schema}"`` to work inside it.
    """
    return pg_schema_factory()


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """``new_topic(prefix="t", partitions=3) -> name``: a fresh topic ``<prefix>.<10 hex>``.

    Replication factor 1; returns once every partition has a leader in the metadata. The
    topics are deleted (best effort) after the test.
    """
    from kafka.admin import KafkaAdminClient

    admin: KafkaAdminClient | None = None
    created: list[str] = []

    def new_topic(prefix: str = "t", partitions: int = 3) -> str:
        nonlocal admin
        if admin is None:
            admin = KafkaAdminClient(
                bootstrap_servers=kafka_bootstrap.split(","), client_id="crm-tests-topics"
            )
        name = f"{prefix}.{uuid.uuid4().hex[:10]}"
        admin.create_topics({name: {"num_partitions": partitions, "replication_factor": 1}})
        created.append(name)
        admin.wait_for_topics([name], timeout_ms=30_000)
        return name

    yield new_topic

    if admin is None:
        return
    try:
        if created:
            admin.delete_topics(created, raise_errors=False)
    except Exception as exc:
        warnings.warn(f"could not delete test topics {created}: {exc!r}", stacklevel=1)
    finally:
        admin.close()
