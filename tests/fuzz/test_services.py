"""Every operation of the three OpenAPI documents, fuzzed in-process with every check.

One test per operation: `test_activity[POST /activities]` and so on. Each runs schemathesis's
examples, coverage and fuzzing phases (positive and negative data, bounded in schemas.py) with
all of its checks, and fails with every distinct failure it saw (checking.py).
"""

from __future__ import annotations

import pytest
import schemathesis

from tests.fuzz.checking import check
from tests.fuzz.schemas import SCHEMAS

pytestmark = pytest.mark.fuzz


@SCHEMAS["activity"].parametrize()
def test_activity(case: schemathesis.Case) -> None:
    check(case)


@SCHEMAS["segmentation"].parametrize()
def test_segmentation(case: schemathesis.Case) -> None:
    check(case)


@SCHEMAS["calendar-sync"].parametrize()
def test_calendar_sync(case: schemathesis.Case) -> None:
    check(case)
