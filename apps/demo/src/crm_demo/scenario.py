"""The sales guide as fourteen steps played over HTTP; `play` is what tests call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import httpx

from crm_demo import activities, calendar_feed, customers, lived, reports
from crm_demo.client import Api, Unexpected
from crm_demo.config import Config
from crm_demo.outcome import StepOutcome
from crm_demo.run import Result, Run, Skipped, Step

STEPS: Final = (
    Step(
        1,
        "customers imported and segmented",
        "segments, R8",
        "CSV import: 5 imported, 0 rejected; segments A, B, C, D and Årsaftale (the agreement "
        "beats a C potential); A, B and Årsaftale prioritized; activity learns them",
        customers.import_and_segment,
    ),
    Step(
        2,
        "status meeting planned",
        "R5, R7",
        "Statusmøde with subject, type and channel planned in the consultant's calendar",
        activities.plan_status_meeting,
    ),
    Step(
        3,
        "no answer: meeting moved",
        "R1",
        "moved to a later time with reason no_answer, not completed; move count 1, the "
        "history keeps the old time",
        activities.move_no_answer,
    ),
    Step(
        4,
        "contact retyped",
        "R2",
        "Kontakt becomes Aftalt salgsmøde; the history keeps the old type",
        activities.retype_contact,
    ),
    Step(
        5,
        "unannounced visit registered",
        "R3, R4",
        "Uanmeldt besøg (Fysisk) registered after the fact: physical activities always are",
        activities.register_visit,
    ),
    Step(
        6,
        "unplanned contact, useless note",
        "R4",
        "refused: 422 with code R4 (the note 'ringede, ingen svar' adds no value)",
        activities.refuse_useless_note,
    ),
    Step(
        7,
        "proposal meeting completed",
        "R6, R7, R9",
        "completed with note, next step, the written proposal attached and the next activity "
        "planned in the same command",
        activities.complete_proposal,
    ),
    Step(
        8,
        "prioritized customer's last activity",
        "R8",
        "once activity knows the customer is prioritized: completing its only future "
        "activity without a next one is refused, 409 with code R8",
        activities.refuse_last_activity,
    ),
    Step(
        9,
        "booked meeting registered after the fact",
        "R3, R4",
        "a physical Statusmøde booked with the customer but never entered is registered as "
        "what it was (booked), not as an unannounced visit, and counts (step 13)",
        lived.register_booked_meeting,
    ),
    Step(
        10,
        "'ingen svar' is no completion",
        "R1",
        "completing a call with the note 'Ringede, ingen svar' is refused, 409 with code R1; "
        "the call is moved instead",
        lived.unanswered_call,
    ),
    Step(
        11,
        "R8 gap opens and closes",
        "R8",
        "a D customer's new potential makes it A: the R8 report lists it at once (became "
        "prioritized, no future activity); planning a meeting closes the gap",
        lived.r8_gap,
    ),
    Step(
        12,
        "going live mid-year",
        "targets",
        "customers imported with the day their segment started get full-year targets, others "
        "pro-rated from the import; the previous CRM's held meeting is imported and counts",
        lived.going_live,
    ),
    Step(
        13,
        "attainment report",
        "targets",
        "held and planned meetings per type against the segment's targets; the completed "
        "Oplægsmøde counts as held",
        reports.attainment,
    ),
    Step(
        14,
        "consultant's .ics feed",
        "R7",
        "the planned activities appear in the feed at their current times and types "
        "('<label>: <subject> – <customer>')",
        calendar_feed.feed,
    ),
)


def play(
    config: Config,
    *,
    transport: httpx.BaseTransport | None = None,
    on_step: Callable[[StepOutcome], None] | None = None,
) -> list[StepOutcome]:
    """Play every step against the system `config` names; raises `Unreachable` when it (or
    its token issuer) does not answer, before any step runs."""
    api = Api(config, transport)
    try:
        api.check_reachable()
        run = Run(api, config.wait_s)
        outcomes = []
        for step in STEPS:
            outcome = _outcome(step, _attempt(step, run))
            if on_step is not None:
                on_step(outcome)
            outcomes.append(outcome)
        return outcomes
    finally:
        api.close()


def _attempt(step: Step, run: Run) -> Result:
    try:
        return step.play(run)
    except Skipped as error:
        return Result(False, f"skipped: {error}")
    except Unexpected as error:
        return Result(False, f"unexpected answer: {error}")
    except httpx.HTTPError as error:
        return Result(False, f"HTTP failed: {type(error).__name__}: {error}")
    except (KeyError, TypeError, ValueError) as error:
        # A response without a field the step reads: show it as a failed step, go on.
        return Result(False, f"unexpected response shape: {type(error).__name__}: {error}")


def _outcome(step: Step, result: Result) -> StepOutcome:
    return StepOutcome(
        step=step.number,
        title=step.title,
        rule=step.rule,
        expected=step.expected,
        happened=result.happened,
        ok=result.ok,
        detail=result.detail,
        facts=result.facts,
    )
