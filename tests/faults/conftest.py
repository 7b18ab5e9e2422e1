"""The fault tier: servers of its own (see infra.py), a Graph fake, and `make up`'s stack."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes import GraphFake
from tests.faults.infra import InfraError, PrivateInfra, private_infra, tools_missing


@pytest.fixture(scope="session")
def infra() -> Iterator[PrivateInfra]:
    missing = tools_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the fault tests need local servers: {missing}", pytrace=False)
        pytest.skip(f"the fault tests need local servers: {missing}")
    try:
        with private_infra() as servers:
            yield servers
    except InfraError as error:
        pytest.fail(f"the fault tests' own servers did not start: {error}", pytrace=False)


@pytest.fixture(scope="session")
def graph() -> Iterator[GraphFake]:
    with GraphFake(seed=12) as fake:
        fake.faults.retry_after = "0.01"
        yield fake
