"""The API documentation pages work without the internet (issue #15, item 9): every script,
stylesheet and icon that `/docs` and `/redoc` name is served by the same app, on each service
on its own (`make up`, Kubernetes) and under its prefix in `make run`'s root app."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
from crm_embedded.system import EmbeddedSystem
from crm_platform.auth import Authenticator, AuthSettings
from crm_platform.settings import RuntimeSettings
from fastapi import FastAPI
from fastapi.testclient import TestClient

ORIGIN = "http://testserver"
PAGES = ("/docs", "/redoc")
SERVICES = ("activity", "segmentation", "calendar-sync")


class Assets(HTMLParser):
    """The URLs a page makes the browser load: scripts, stylesheets, icons, images."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "img", "iframe") and found.get("src"):
            self.urls.append(str(found["src"]))
        if tag == "link" and found.get("href"):
            self.urls.append(str(found["href"]))


def assets_of(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


@pytest.fixture(scope="module")
def system() -> Iterator[EmbeddedSystem]:
    with tempfile.TemporaryDirectory(prefix="crm-docs-") as tmp:
        settings = RuntimeSettings(
            _env_file=None, postgres_dsn=None, kafka_bootstrap=None, data_dir=Path(tmp)
        )
        auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
        built = EmbeddedSystem.build(settings, auth, "127.0.0.1", 8000)
        try:
            yield built
        finally:
            built.close()


def apps(system: EmbeddedSystem) -> dict[str, tuple[FastAPI, str]]:
    """Each service's app as it runs on its own port, and make run's root app with prefixes."""
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    found: dict[str, tuple[FastAPI, str]] = {
        "activity": (system.activity.api(auth), ""),
        "segmentation": (system.segmentation.api(auth), ""),
        "calendar-sync": (system.calendar.api(auth), ""),
    }
    for prefix in SERVICES:
        found[f"embedded /{prefix}"] = (system.root, f"/{prefix}")
    return found


@pytest.mark.parametrize(
    "name",
    [*SERVICES, *(f"embedded /{p}" for p in SERVICES)],
)
def test_docs_pages_load_only_same_origin_assets_that_answer(
    system: EmbeddedSystem, name: str
) -> None:
    app, prefix = apps(system)[name]
    with TestClient(app, base_url=ORIGIN) as client:
        for page in PAGES:
            answer = client.get(prefix + page)
            assert answer.status_code == 200, (name, page)
            urls = assets_of(answer.text)
            # Swagger UI needs its script and stylesheet; ReDoc its script.
            assert any(u.endswith(".js") for u in urls), (name, page, urls)
            for url in urls:
                absolute = urljoin(f"{ORIGIN}{prefix}{page}", url)
                parts = urlsplit(absolute)
                assert f"{parts.scheme}://{parts.netloc}" == ORIGIN, (name, page, url)
                assert parts.path.startswith(f"{prefix}/"), (name, page, url)
                asset = client.get(absolute)
                assert asset.status_code == 200, (name, page, url, asset.status_code)
                assert asset.content, (name, page, url)
            # The OpenAPI document the page reads lies under the same prefix.
            assert f"url: '{prefix}/openapi.json'" in answer.text or (
                f'spec-url="{prefix}/openapi.json"' in answer.text
            ), (name, page)
        assert client.get(f"{prefix}/openapi.json").status_code == 200
