"""Issue #15, items 7 and 9, in a real headless Chromium against `make run`'s process:

- the services' API documentation renders (Swagger UI shows an operation, ReDoc too) with
  every request the browser sends going to this machine;
- every cockpit page at a phone's width (390 px) has no horizontal scroll, is screenshot
  whole (`.cache/screens/telefon-*.png`), passes axe-core, and loads nothing from outside;
- by keyboard alone: the skip link, a visible focus, and the calendar feed link made, copied
  and made anew (the old link stops working, the new one serves the calendar).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec

from tests.e2e.embedded_process import PREFIXES, EmbeddedProcess
from tests.web.conftest import (
    ANNA,
    axe_violations,
    external,
    full_screenshot,
    requested_urls,
    screenshot,
)
from tests.web.test_cockpit_browser import sign_in, wait

ANNA_HEADERS = {"X-Dev-User": ANNA, "X-Dev-Roles": "consultant"}
MAX_TABS = 200  # a keyboard user reaches the control within this many presses of Tab


def test_api_docs_render_with_nothing_from_outside(browser: Any, system: EmbeddedProcess) -> None:
    requested_urls(browser)  # what the browser did on start belongs to no page
    for prefix in PREFIXES:
        browser.get(f"{system.base}/{prefix}/docs")
        operation = wait(
            browser,
            ec.visibility_of_element_located((By.CSS_SELECTOR, ".opblock .opblock-summary-path")),
        )
        assert operation.text.startswith("/"), operation.text
        screenshot(browser, f"docs-{prefix}")
        urls = requested_urls(browser)
        assert any(u.endswith("/docs/assets/swagger-ui-bundle.js") for u in urls), urls
        assert external(urls) == [], f"{prefix}/docs asked outside: {external(urls)}"

        browser.get(f"{system.base}/{prefix}/redoc")
        wait(
            browser,
            ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-section-id^='operation/']")),
        )
        urls = requested_urls(browser)
        assert external(urls) == [], f"{prefix}/redoc asked outside: {external(urls)}"


@pytest.fixture
def planned(manager_api: httpx.Client, customers: dict[str, str]) -> str:
    """One of Anna's activities planned for tomorrow, for the activity page."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    answer = manager_api.post(
        "/activity/activities",
        headers=ANNA_HEADERS,
        json={
            "customer_id": customers["A"],
            "owner": ANNA,
            "type": "status_meeting",
            "channel": "phone",
            "subject": "Status på telefonen",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=30)).isoformat(),
        },
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def horizontal_overflow(driver: Any) -> str:
    """'' when the page fits the viewport's width; else what sticks out, for the message."""
    return str(
        driver.execute_script(
            "const root = document.documentElement;"
            "if (root.scrollWidth <= root.clientWidth) return '';"
            "const wide = [...document.querySelectorAll('body *')]"
            "  .filter(e => e.getBoundingClientRect().right > root.clientWidth + 1)"
            "  .filter(e => !e.closest('.table-scroll'))"
            "  .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id);"
            "return `scrollWidth ${root.scrollWidth} > ${root.clientWidth}: ${wide}`;"
        )
    )


def check_phone_page(driver: Any, name: str) -> None:
    overflow = horizontal_overflow(driver)
    full_screenshot(driver, f"telefon-{name}")
    assert not overflow, f"{name} scrolls sideways at a phone's width: {overflow}"
    bad = axe_violations(driver)
    assert not bad, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad
    )


def test_every_page_fits_a_phone_and_loads_nothing_from_outside(
    phone: Any, system: EmbeddedProcess, customers: dict[str, str], planned: str
) -> None:
    base = system.base
    driver = phone
    driver.get(f"{base}/log-ind")
    # The page's viewport meta makes the layout as wide as the phone.
    assert driver.execute_script("return document.documentElement.clientWidth") == 390
    check_phone_page(driver, "log-ind")

    sign_in(driver, base, ANNA, "consultant")
    consultant_pages = {
        "min-uge": "/uge",
        "planlaeg": f"/aktiviteter/ny?kunde={customers['A']}",
        "aktivitet": f"/aktiviteter/{planned}",
        "ingen-svar": f"/aktiviteter/{planned}/ingen-svar",
        "registrer": f"/registrer?kunde={customers['C']}",
        "kunder": "/kunder?q=Bageriet",
        "kunde": f"/kunder/{customers['A']}",
    }
    for name, path in consultant_pages.items():
        driver.get(base + path)
        check_phone_page(driver, name)

    # The navigation reaches every page at this width too.
    sign_in(driver, base, "mia@example.dk", "sales_manager")
    links = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "header nav a")]
    assert {"Min uge", "Planlæg", "Registrér", "Kunder", "Team", "Import"} <= set(links)
    for name, path in {"team": "/team", "sparring": f"/team/{ANNA}", "import": "/import"}.items():
        driver.get(base + path)
        check_phone_page(driver, name)

    outside = external(requested_urls(driver))
    assert outside == [], f"the cockpit asked outside this machine: {outside}"


def tab_to(driver: Any, selector: str) -> Any:
    """Press Tab until `selector` has the focus (a keyboard user's way there)."""
    target = driver.find_element(By.CSS_SELECTOR, selector)
    for _ in range(MAX_TABS):
        if driver.switch_to.active_element == target:
            return target
        driver.switch_to.active_element.send_keys(Keys.TAB)
    raise AssertionError(f"{selector} cannot be reached with Tab")


def outline_of(driver: Any) -> str:
    return str(
        driver.execute_script(
            "const s = getComputedStyle(document.activeElement);"
            "return s.outlineStyle === 'none' ? '' : s.outlineStyle + ' ' + s.outlineWidth;"
        )
    )


def feed_url(driver: Any) -> str:
    # Read in one step: htmx may replace the element between a find and a read.
    return str(driver.execute_script("return document.getElementById('feed-url')?.value || ''"))


def test_by_keyboard_skip_link_focus_and_the_calendar_link_made_copied_and_renewed(
    browser: Any, system: EmbeddedProcess
) -> None:
    base = system.base
    driver = browser
    sign_in(driver, base, ANNA, "consultant")
    driver.get(f"{base}/uge")
    # Pages can be read aloud and copied from: the clipboard for the copy button's check.
    driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": base, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )

    # The first Tab finds the skip link; Enter moves the focus to the page's content.
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    skip = driver.switch_to.active_element
    assert skip.text == "Gå til indholdet"
    assert outline_of(driver), "the focused skip link shows no focus"
    skip.send_keys(Keys.ENTER)
    wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "indhold")

    # Make a feed link, by keyboard.
    make = tab_to(driver, "#kalender-abonnement button[type=submit]")
    assert outline_of(driver), "the focused button shows no focus"
    make.send_keys(Keys.ENTER)
    first = wait(driver, ec.visibility_of_element_located((By.ID, "feed-url")))
    first_url = str(first.get_attribute("value"))
    assert "/calendar-sync/calendars/" in first_url
    assert "token=" in first_url
    # The new link is announced, and the focus is on it, ready to be copied (htmx moves the
    # focus when the swap settles, a moment after the link is shown).
    wait(driver, lambda d: d.switch_to.active_element.get_attribute("id") == "feed-url")
    assert "Et nyt link er lavet" in driver.find_element(By.ID, "kalender-link").text

    copy = tab_to(driver, "#kalender-link button[data-copy]")
    copy.send_keys(Keys.ENTER)
    wait(driver, lambda d: "Kopieret" in d.find_element(By.ID, "kalender-link").text)
    copied = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "navigator.clipboard.readText().then(done, e => done('error: ' + e));"
    )
    assert copied == first_url
    screenshot(driver, "kalender-link")

    feed = httpx.get(first_url, timeout=30)
    assert feed.status_code == 200, feed.text
    assert feed.headers["content-type"].startswith("text/calendar")

    # Made anew: the old link stops working, the new one works.
    again = tab_to(driver, "#kalender-abonnement button[type=submit]")
    again.send_keys(Keys.ENTER)
    second_url = wait(driver, lambda d: feed_url(d) not in ("", first_url) and feed_url(d))
    assert httpx.get(first_url, timeout=30).status_code == 404
    assert httpx.get(second_url, timeout=30).status_code == 200
