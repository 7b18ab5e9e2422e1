"""A run that skipped tests needing PostgreSQL or Kafka fails: it did not test what it claims."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
TESTS = """
import pytest

@pytest.mark.postgres
def test_needs_postgres():
    pytest.skip("no PostgreSQL here")

def test_needs_nothing():
    pass
"""


def test_a_skipped_test_that_needs_a_server_fails_the_run(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(TESTS)

    result = pytester.runpytest()

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 test(s) needing PostgreSQL or Kafka were skipped*"])


def test_deselecting_them_is_the_way_to_run_without_servers(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(TESTS)

    result = pytester.runpytest("-m", "not postgres and not kafka")

    assert result.ret == pytest.ExitCode.OK
