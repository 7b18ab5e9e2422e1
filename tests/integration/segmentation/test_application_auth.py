"""Who may do what in segmentation (decisions in segmentation.application):

- potentials, agreements, the policy, the calendar, owners and imports: managers and services;
- registering: managers and services for anyone; a consultant only a customer they own;
- renaming: managers, services, and the customer's owner.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from crm_platform.errors import Forbidden
from segmentation.application import NewCustomer, SegmentationApplication
from segmentation.policy import DEFAULT_POLICY

from tests.support.people import ANNA, BO, MIA, SERVICE

Command = Callable[[SegmentationApplication, Any], object]


def new_policy() -> dict[str, Any]:
    data = DEFAULT_POLICY.to_json()
    data["prioritized"] = ["A"]
    return data


MANAGER_ONLY: dict[str, Command] = {
    "assess_potential": lambda app, who: app.assess_potential(who, "c-anna", amount="1000"),
    "start_agreement": lambda app, who: app.start_agreement(
        who, "c-anna", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31)
    ),
    "change_owner": lambda app, who: app.change_owner(who, "c-anna", owner="bo@example.dk"),
    "set_policy": lambda app, who: app.set_policy(who, new_policy()),
    "apply_calendar": lambda app, who: app.apply_calendar(who),
    "register_customers": lambda app, who: app.register_customers(
        who, [NewCustomer(name="X", customer_id="c-x")]
    ),
}

# What each command, once allowed, has visibly done (not only that nothing was raised).
Effect = Callable[[SegmentationApplication, Any], bool]
EFFECTS: dict[str, Effect] = {
    "assess_potential": lambda app, _: (
        app.customer("c-anna").customer.potential == Decimal("1000.00")
    ),
    "start_agreement": lambda app, _: (
        (agreement := app.customer("c-anna").customer.agreement) is not None
        and (agreement.starts_on, agreement.ends_on) == (date(2026, 1, 1), date(2026, 12, 31))
    ),
    "change_owner": lambda app, _: app.customer("c-anna").customer.owner == "bo@example.dk",
    "set_policy": lambda app, _: app.policy().version == 2,
    "apply_calendar": lambda app, result: result.today == date(2026, 3, 2),  # the clock's day
    "register_customers": lambda app, _: app.customer("c-x").customer.name == "X",
}


@pytest.fixture(autouse=True)
def anna_customer(app: SegmentationApplication) -> str:
    return app.register_customer(
        MIA, name="Annas kunde", customer_id="c-anna", owner=ANNA.user_id
    ).customer.customer_id


@pytest.mark.parametrize("command", list(MANAGER_ONLY))
def test_consultants_may_not_change_potentials_agreements_or_policy(
    app: SegmentationApplication, command: str
) -> None:
    version = app.customer("c-anna").version
    with pytest.raises(Forbidden):
        MANAGER_ONLY[command](app, ANNA)  # even for her own customer
    assert app.customer("c-anna").version == version
    assert app.policy().version == 1


@pytest.mark.parametrize("command", list(MANAGER_ONLY))
@pytest.mark.parametrize("who", [MIA, SERVICE], ids=["manager", "service"])
def test_managers_and_services_may(app: SegmentationApplication, command: str, who: Any) -> None:
    result = MANAGER_ONLY[command](app, who)

    assert EFFECTS[command](app, result)


def test_ending_an_agreement_is_for_managers(app: SegmentationApplication) -> None:
    app.start_agreement(MIA, "c-anna", starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    with pytest.raises(Forbidden):
        app.end_agreement(ANNA, "c-anna")
    assert app.end_agreement(MIA, "c-anna").customer.agreement is not None


def test_a_consultant_registers_only_customers_of_her_own(app: SegmentationApplication) -> None:
    mine = app.register_customer(ANNA, name="Min kunde", owner="ANNA@example.dk").customer
    assert (mine.owner, mine.updated_by) == (ANNA.user_id, ANNA.user_id)
    with pytest.raises(Forbidden):
        app.register_customer(ANNA, name="Bos kunde", owner=BO.user_id)
    with pytest.raises(Forbidden):
        app.register_customer(ANNA, name="Ingens kunde")


def test_the_owner_may_rename_others_may_not(app: SegmentationApplication) -> None:
    with pytest.raises(Forbidden):
        app.rename(BO, "c-anna", name="Bos navn")
    assert app.rename(ANNA, "c-anna", name="Annas nye navn").customer.name == "Annas nye navn"
    assert app.rename(MIA, "c-anna", name="Mias navn").customer.updated_by == MIA.user_id
    app.register_customer(MIA, name="Uden ejer", customer_id="c-none")
    with pytest.raises(Forbidden):
        app.rename(ANNA, "c-none", name="Annas")
