"""`make demo` against `make run`'s process: every step of the sales guide matches, twice
against the same system (a rerun must not trip over the first run's customers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from crm_demo.config import Config, load_config
from crm_demo.outcome import StepOutcome
from crm_demo.scenario import play
from crm_demo.table import render

from tests.e2e.embedded_process import EmbeddedProcess, embedded_system

SEGMENTS = {"A": "A", "B": "B", "C": "C", "D": "D", "AG": "annual_agreement"}
PRIORITIZED = {"A": True, "B": True, "C": False, "D": False, "AG": True}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedProcess]:
    with embedded_system(tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture(scope="module")
def config(system: EmbeddedProcess, tmp_path_factory: pytest.TempPathFactory) -> Config:
    # Through the same environment contract `make demo` reads, so that path is tested too.
    env = {
        "CRM_DEMO_ACTIVITY_URL": system.url("activity"),
        "CRM_DEMO_SEGMENTATION_URL": system.url("segmentation"),
        "CRM_DEMO_CALENDAR_URL": system.url("calendar-sync"),
    }
    config = load_config(env, tmp_path_factory.mktemp("cwd"))
    assert (config.activity_url, config.token_url) == (system.url("activity"), None)
    return config


@pytest.fixture(scope="module")
def runs(system: EmbeddedProcess, config: Config) -> list[list[StepOutcome]]:
    return [play(config), play(config)]


def by_step(outcomes: list[StepOutcome]) -> dict[int, StepOutcome]:
    return {o.step: o for o in outcomes}


@pytest.mark.parametrize("run", [0, 1], ids=["first run", "rerun"])
def test_every_step_matches_the_guide(
    runs: list[list[StepOutcome]], system: EmbeddedProcess, run: int
) -> None:
    outcomes = runs[run]
    assert [o.step for o in outcomes] == list(range(1, 15))
    failed = [o.step for o in outcomes if not o.ok]
    assert not failed, f"steps {failed} failed:\n{render(outcomes, 140)}\n{system.output()}"


@pytest.mark.parametrize("run", [0, 1], ids=["first run", "rerun"])
def test_the_outcomes_carry_the_guides_facts(runs: list[list[StepOutcome]], run: int) -> None:
    steps = by_step(runs[run])
    imported = steps[1].facts
    assert (imported["imported"], imported["rejected"]) == (5, 0)
    assert imported["segments"] == SEGMENTS
    assert imported["prioritized"] == PRIORITIZED
    assert steps[3].facts == {"reason": "no_answer", "move_count": 1}
    assert steps[4].facts == {"type": "sales_meeting", "was": "contact"}
    assert steps[6].facts == {"status": 422, "code": "R4"}
    assert steps[7].facts == {"status": "completed", "next": True}
    assert steps[8].facts == {"status": 409, "code": "R8"}
    assert steps[9].facts == {"type": "status_meeting", "booked": True}
    assert steps[10].facts == {"status": 409, "code": "R1"}
    assert steps[11].facts == {"why": "became_prioritized", "closed": True}
    going_live = steps[12].facts
    assert float(going_live["full"]) == 4.0 > float(going_live["prorated"])
    summaries = steps[14].facts["summaries"]
    assert "Statusmøde: Status på annoncering – Alfa Avis ApS" in summaries
    assert "Aftalt salgsmøde: Forårskampagne – Cykelhandler Carlsen" in summaries
    assert "Statusmøde: Opfølgning på oplæg – Bager Hansen ApS" in summaries
    assert "Statusmøde: Årsaftalens status – Aarhus Møbler A/S" in summaries
    assert "Aftalt salgsmøde: Tilbud på julekampagne – Cykelhandler Carlsen" in summaries
    assert "Statusmøde: Plan for den nye klinik – Dyrlæge Dahl" in summaries
    assert len(summaries) == 6


def test_a_rerun_uses_new_customers(runs: list[list[StepOutcome]]) -> None:
    first, second = (by_step(r)[1].facts["customer_ids"] for r in runs)
    assert set(first.values()).isdisjoint(second.values())
    assert all(cid.startswith("demo-") for cid in (*first.values(), *second.values()))


def test_the_table_shows_every_step(runs: list[list[StepOutcome]]) -> None:
    text = render(runs[0], 1000)  # wide enough that no cell wraps
    assert "ringede, ingen svar" in text
    assert "422 R4" in text
    assert "409 R8" in text
    assert "409 R1" in text
    assert "Årsaftale" in text
    assert "✗" not in text
