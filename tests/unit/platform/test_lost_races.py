"""A command whose save lost an optimistic race runs again, a bounded number of times."""

from __future__ import annotations

import pytest
from crm_platform.errors import LostRace, StaleVersion
from crm_platform.idempotency import LOST_RACE_ATTEMPTS, retries_lost_races


class App:
    def __init__(self, losses: int, then: Exception | None = None) -> None:
        self.losses, self.then, self.runs = losses, then, 0

    @retries_lost_races
    def command(self, value: str) -> str:
        self.runs += 1
        if self.runs <= self.losses:
            raise LostRace("someone saved in between", retry=True)
        if self.then is not None:
            raise self.then
        return value


@pytest.mark.parametrize("losses", range(LOST_RACE_ATTEMPTS))
def test_a_lost_race_runs_the_command_again(losses: int) -> None:
    app = App(losses)
    assert app.command("done") == "done"
    assert app.runs == losses + 1


def test_it_gives_up_after_its_attempts_with_the_last_refusal() -> None:
    app = App(LOST_RACE_ATTEMPTS)
    with pytest.raises(LostRace):
        app.command("never")
    assert app.runs == LOST_RACE_ATTEMPTS


def test_what_the_new_state_refuses_is_not_retried() -> None:
    app = App(1, then=StaleVersion("read it again", current_version=3))
    with pytest.raises(StaleVersion):
        app.command("x")
    assert app.runs == 2
