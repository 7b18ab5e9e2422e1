"""The cockpit's tests: `make run`'s process (the three services and the cockpit at `/`) and
a real headless Chromium driven by Selenium through Debian's chromedriver.

Nothing here skips: without Chromium the tests fail and say how to install it (`make
browser`, which `make test` runs). Screenshots of every page a test visits go to
`.cache/screens/`; axe-core (vendored from npm, tests/web/vendor) checks each of them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.embedded_process import EmbeddedProcess, embedded_system

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


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
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
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


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
