"""The cockpit's tests: `make run`'s process (the three services and the cockpit at `/`) and
a real headless Chromium driven by Selenium through Debian's chromedriver.

Nothing here skips: without Chromium the tests fail and say how to install it (`make
browser`, which `make test` runs). Screenshots of every page a test visits go to
`.cache/screens/`; axe-core (vendored from npm, tests/web/vendor) checks each of them.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.embedded_process import EmbeddedProcess, embedded_system
from tests.support.polling import wait_until

REPO = Path(__file__).resolve().parents[2]
SCREENS = REPO / ".cache" / "screens"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# The closed network makes Chromium's background services hang or retry; none is needed.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    "--lang=da-DK",
)
PHONE_WIDTH = 390
ANNA = "anna@example.dk"
MIA = {"X-Dev-User": "mia@example.dk", "X-Dev-Roles": "sales_manager"}


@pytest.fixture(scope="session")
def system() -> Iterator[EmbeddedProcess]:
    root = Path(tempfile.mkdtemp(prefix="crm-web-"))
    try:
        with embedded_system(root) as running:
            yield running
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def manager_api(system: EmbeddedProcess) -> Iterator[httpx.Client]:
    """The APIs as the sales manager, for what a test needs on record before the browser."""
    with httpx.Client(base_url=system.base, headers=MIA, timeout=30) as client:
        yield client


def start_browser(profile: Path) -> Any:
    """Headless Chromium through Debian's chromedriver, logging every request it sends (the
    Chrome DevTools "performance" log) so a test can tell whether anything left the machine."""
    for needed in (CHROMIUM, CHROMEDRIVER):
        if not Path(needed).exists():
            pytest.fail(
                f"{needed} is missing: `make browser` installs Debian's chromium and "
                "chromium-driver (make test runs it)",
                pytrace=False,
            )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    driver = start_browser(tmp_path / "chromium-profile")
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    """The same browser as a phone: a 390 px wide viewport that honours the viewport meta."""
    driver = start_browser(tmp_path / "chromium-profile")
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": PHONE_WIDTH, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: Any) -> list[str]:
    """Every URL the browser sent a request for since the last call (the log is read once).

    A request the browser itself blocked (its Content-Security-Policy, say) never left it:
    DevTools still announces it, then reports it failed with a `blockedReason`.
    """
    asked: dict[str, str] = {}
    blocked: set[str] = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message.get("method") == "Network.requestWillBeSent":
            asked[f"{params['requestId']} {len(asked)}"] = str(params["request"]["url"])
        elif message.get("method") == "Network.loadingFailed" and params.get("blockedReason"):
            blocked.add(str(params["requestId"]))
    return [url for key, url in asked.items() if key.split(" ")[0] not in blocked]


def external(urls: list[str]) -> list[str]:
    """The URLs among `urls` that would leave this machine."""
    local = ("127.0.0.1", "localhost", "[::1]")
    return [
        u
        for u in urls
        if not u.startswith(("data:", "blob:", "about:", "chrome:", "chrome-extension:"))
        and urlsplit(u).hostname not in {h.strip("[]") for h in local}
    ]


def full_screenshot(driver: Any, name: str) -> Path:
    """The whole page, not only the viewport: a phone's page is long."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def screenshot(driver: Any, name: str) -> Path:
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def axe_violations(driver: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)),"
        " e => done(JSON.stringify({error: String(e)})));"
    )
    found = json.loads(result)
    if isinstance(found, dict):
        raise AssertionError(f"axe failed: {found['error']}")
    return [v for v in found if v.get("impact") in ("serious", "critical")]


def check_page(driver: Any, name: str) -> None:
    """Save the page's screenshot, then require axe to find nothing serious or critical."""
    screenshot(driver, name)
    bad = axe_violations(driver)
    assert not bad, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad
    )


@pytest.fixture
def customers(manager_api: httpx.Client) -> dict[str, str]:
    """Anna's customers: one A (prioritized, R8) and one C, fresh for each run."""
    run = uuid.uuid4().hex[:6]
    made = {}
    for key, potential in (("A", "400000"), ("C", "50000")):
        customer_id = f"web-{run}-{key}"
        response = manager_api.post(
            "/segmentation/customers",
            json={
                "customer_id": customer_id,
                "name": f"Bageriet {key} {run} ApS",
                "owner": ANNA,
                "potential_dkk": potential,
            },
        )
        assert response.status_code == 201, response.text
        made[key] = customer_id

    def known_to_activity() -> bool:
        found = manager_api.get("/activity/reports/without-future-activity", params={"owner": ANNA})
        return any(g["customer_id"] == made["A"] for g in found.json())

    # The A customer's R8 gap opens once activity has the customer from the registry.
    wait_until(known_to_activity, timeout=30, message="the A customer's R8 gap")
    return made
