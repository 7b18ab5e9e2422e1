"""The cockpit in a real headless Chromium against `make run`'s process: a consultant plans,
moves for no answer, sees an R8 refusal in Danish beside its field with her note kept,
completes with the next activity, registers a booked meeting after the fact; a manager sees
the team's attainment change. Every page is screenshot and checked with axe-core."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.embedded_process import EmbeddedProcess
from tests.support.polling import wait_until
from tests.web.conftest import ANNA, check_page, screenshot

WAIT_S = 20


def wait(driver: Any, condition: Callable[[Any], Any]) -> Any:
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(condition)


def sign_in(driver: Any, base: str, user: str, role: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/log-ind")
    field = driver.find_element(By.ID, "f-user")
    field.clear()
    field.send_keys(user)
    driver.find_element(By.ID, f"rolle-{role}").click()
    driver.find_element(By.CSS_SELECTOR, "form[action='/log-ind'] button[type=submit]").click()
    wait(driver, ec.presence_of_element_located((By.CSS_SELECTOR, ".who")))


def set_value(driver: Any, element_id: str, value: str) -> None:
    """A datetime-local field's value (typing into it depends on the browser's locale)."""
    driver.execute_script(
        "const e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));",
        element_id,
        value,
    )


def fill(driver: Any, element_id: str, text: str) -> None:
    element = driver.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(text)


def body_text(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def anna_actual(driver: Any) -> int:
    row = driver.find_element(By.CSS_SELECTOR, f"#team-chart [data-owner='{ANNA}'] .actual")
    return int(row.text)


def test_a_consultants_day_and_the_managers_view(
    browser: Any, system: EmbeddedProcess, customers: dict[str, str]
) -> None:
    base = system.base
    driver = browser

    # The manager's starting point.
    sign_in(driver, base, "mia@example.dk", "sales_manager")
    driver.get(f"{base}/team")
    wait(driver, ec.presence_of_element_located((By.ID, "team-chart")))
    before = (
        anna_actual(driver)
        if driver.find_elements(By.CSS_SELECTOR, f"#team-chart [data-owner='{ANNA}']")
        else 0
    )
    check_page(driver, "team")

    # Min uge, with the A customer's R8 gap.
    sign_in(driver, base, ANNA, "consultant")
    assert driver.current_url.endswith("/uge")
    assert "Prioriterede kunder uden næste aktivitet (R8)" in body_text(driver)
    check_page(driver, "min-uge")

    # Plan a phone status meeting with the A customer, tomorrow 09:00.
    tomorrow = date.today() + timedelta(days=1)
    driver.get(f"{base}/aktiviteter/ny?kunde={customers['A']}")
    check_page(driver, "planlaeg")
    Select(driver.find_element(By.ID, "f-type")).select_by_value("status_meeting")
    Select(driver.find_element(By.ID, "f-channel")).select_by_value("phone")
    fill(driver, "f-subject", "Status på forårets kampagne")
    set_value(driver, "f-starts_at", f"{tomorrow.isoformat()}T09:00")
    set_value(driver, "f-ends_at", f"{tomorrow.isoformat()}T09:30")
    driver.find_element(By.CSS_SELECTOR, "form[action='/aktiviteter/ny'] button").click()
    wait(driver, ec.url_contains("besked=planlagt"))
    card = driver.find_element(By.XPATH, "//article[.//a[text()='Statusmøde']]")
    assert "Status på forårets kampagne" in card.text

    # The customer did not answer: one click, the proposed slot, move (R1).
    card.find_element(By.LINK_TEXT, "Kunden tog ikke telefonen").click()
    form = wait(
        driver, ec.presence_of_element_located((By.CSS_SELECTOR, "form[hx-post*='ingen-svar']"))
    )
    proposed = driver.find_element(By.ID, "f-starts_at").get_attribute("value")
    assert proposed, "no proposed slot"
    assert proposed > f"{tomorrow.isoformat()}T09:00", proposed
    screenshot(driver, "ingen-svar")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, ec.url_contains("dag="))
    wait(driver, lambda d: "flyttet 1 gang" in body_text(d))
    check_page(driver, "min-uge-efter-flyt")

    # Complete it without a next activity: R8 refuses, in Danish, beside the next activity;
    # the note is still there.
    driver.find_element(By.LINK_TEXT, "Statusmøde").click()
    wait(driver, ec.presence_of_element_located((By.ID, "f-note")))
    note = "Kunden vil øge frekvensen i foråret: Budget 2027 hæves til 80.000 kr."
    fill(driver, "f-note", note)
    fill(driver, "f-next_step", "Sende oplæg om forårskampagnen")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/afslut'] button[type=submit]").click()
    refusal = wait(driver, ec.presence_of_element_located((By.ID, "fejl-next_activity")))
    assert "prioriteret" in refusal.text
    assert "(R8)" in refusal.text
    assert driver.find_element(By.ID, "f-note").get_attribute("value") == note
    check_page(driver, "afslut-r8-afvist")

    # With the next activity in the same form: completed, and the next one is in the week.
    following = tomorrow + timedelta(days=7)
    fill(driver, "f-next_activity-subject", "Oplæg om forårskampagnen")
    Select(driver.find_element(By.ID, "f-next_activity-type")).select_by_value("proposal_meeting")
    Select(driver.find_element(By.ID, "f-next_activity-channel")).select_by_value("physical")
    set_value(driver, "f-next_activity-starts_at", f"{following.isoformat()}T10:00")
    set_value(driver, "f-next_activity-ends_at", f"{following.isoformat()}T11:00")
    driver.find_element(By.CSS_SELECTOR, "form[action$='/afslut'] button[type=submit]").click()
    wait(driver, ec.url_contains("besked=afsluttet"))
    # Read your own writes: the page drawn right after the command has the next activity.
    assert "Oplæg om forårskampagnen" in body_text(driver)
    check_page(driver, "min-uge-naeste-aktivitet")

    # A booked physical meeting with the C customer, registered after the fact.
    driver.get(f"{base}/registrer?kunde={customers['C']}")
    Select(driver.find_element(By.ID, "f-type")).select_by_value("status_meeting")
    Select(driver.find_element(By.ID, "f-channel")).select_by_value("physical")
    driver.find_element(By.ID, "f-booked").click()
    fill(driver, "f-subject", "Statusmøde i butikken")
    fill(driver, "f-note", "Gennemgik annoncerne: tilbudsavisen giver 30 nye kunder om ugen.")
    fill(driver, "f-next_step", "Følge op om julekampagnen")
    check_page(driver, "registrer")
    driver.find_element(By.CSS_SELECTOR, "form[action='/registrer'] button[type=submit]").click()
    wait(driver, ec.url_contains("besked=registreret"))
    assert "Statusmøde i butikken" in body_text(driver)

    # The customer page: segment, targets as bars, the timeline.
    driver.get(f"{base}/kunder/{customers['C']}")
    assert "Mål" in body_text(driver)
    assert "Tidslinje" in body_text(driver)
    check_page(driver, "kunde")
    driver.get(f"{base}/kunder?q=Bageriet")
    check_page(driver, "kunder")

    # The manager sees Anna's attainment grow by the two meetings held.
    sign_in(driver, base, "mia@example.dk", "sales_manager")

    def grown() -> bool:
        driver.get(f"{base}/team")
        return anna_actual(driver) >= before + 2

    wait_until(grown, timeout=30, interval=0.2, message="Anna's two meetings in the team report")
    check_page(driver, "team-efter")
    driver.get(f"{base}/team/{ANNA}")
    assert "Sparring med" in body_text(driver)
    check_page(driver, "sparring")
    driver.get(f"{base}/import")
    check_page(driver, "import")
