"""The fuzz tier: schemathesis over the three OpenAPI documents of the embedded system."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fuzz.checking import collecting, fail_if_any
from tests.fuzz.system import SWITCH, EmbeddedSystem


@pytest.fixture(scope="session", autouse=True)
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedSystem]:
    """The session's system, SQLite in a pytest tmp dir, workers running; every schema's app."""
    system = EmbeddedSystem(tmp_path_factory.mktemp("embedded"), workers=True)
    system.start()
    system.seed()
    SWITCH.target = system.root
    try:
        yield system
    finally:
        SWITCH.target = None
        system.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # schemathesis names each item `test_x[METHOD /path]`, but pytest 9.2 builds node ids from
    # `originalname`, so every operation of a schema had the same id `test_x`: put the
    # operation back, so that reports and --lf name it (select one with -k, see README.md).
    for item in items:
        if getattr(item, "operation_label", None) and not item.nodeid.endswith("]"):
            item._id = item.parent.id.child(item.name)  # type: ignore[union-attr]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> object:
    """An operation's test fails once, at its end, with every distinct failure it saw."""
    if not getattr(item, "operation_label", None):
        return (yield)
    with collecting() as findings:
        result = yield
    fail_if_any(findings, item.nodeid)
    return result
