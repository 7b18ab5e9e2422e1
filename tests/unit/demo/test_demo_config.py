"""Which system `make demo` targets: env overrides, `make up`'s stack file, `make run`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crm_demo.config import Config, ConfigError, load_config

STACK = {
    "activity": "http://127.0.0.1:8001",
    "segmentation": "http://127.0.0.1:8002",
    "calendar_sync": "http://127.0.0.1:8003/",
    "token_url": "http://127.0.0.1:8010/token",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "uv.lock").write_text("")
    (tmp_path / "apps").mkdir()
    return tmp_path


def write_stack(repo: Path, data: object) -> Path:
    path = repo / ".cache" / "devstack" / "stack.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    return path


def test_without_anything_the_demo_targets_make_run_with_dev_headers(repo: Path) -> None:
    config = load_config({}, repo)
    assert config == Config()
    assert config.activity_url == "http://127.0.0.1:8000/activity"
    assert config.segmentation_url == "http://127.0.0.1:8000/segmentation"
    assert config.calendar_url == "http://127.0.0.1:8000/calendar-sync"
    assert config.token_url is None
    assert "dev headers" in config.describe()


def test_the_stack_file_of_make_up_is_found_from_a_subdirectory(repo: Path) -> None:
    write_stack(repo, STACK)
    config = load_config({}, repo / "apps")
    assert (config.activity_url, config.segmentation_url, config.calendar_url) == (
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
    )
    assert config.token_url == "http://127.0.0.1:8010/token"
    assert "bearer tokens from http://127.0.0.1:8010/token" in config.describe()
    assert "make up" in config.source


def test_crm_demo_stack_names_another_stack_file(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.json"
    other.write_text(json.dumps(STACK | {"activity": "http://10.0.0.1:1"}))
    config = load_config({"CRM_DEMO_STACK": str(other)}, repo)
    assert config.activity_url == "http://10.0.0.1:1"


def test_an_env_override_wins_and_ignores_the_stack_file(repo: Path) -> None:
    write_stack(repo, STACK)
    config = load_config({"CRM_DEMO_ACTIVITY_URL": "http://h:1/activity/"}, repo)
    assert config.activity_url == "http://h:1/activity"
    # The rest falls back to `make run`, never to the stack file's token issuer.
    assert config.segmentation_url == "http://127.0.0.1:8000/segmentation"
    assert config.token_url is None
    assert "CRM_DEMO_ACTIVITY_URL" in config.source


def test_a_token_url_from_the_environment_switches_to_bearer_tokens(repo: Path) -> None:
    config = load_config({"CRM_DEMO_TOKEN_URL": "http://127.0.0.1:9/token"}, repo)
    assert config.token_url == "http://127.0.0.1:9/token"
    assert config.activity_url == "http://127.0.0.1:8000/activity"


@pytest.mark.parametrize("content", ["not json", "[]", json.dumps({"activity": "x"})])
def test_a_broken_stack_file_is_an_error_not_a_guess(repo: Path, content: str) -> None:
    path = repo / ".cache" / "devstack" / "stack.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"stack\.json"):
        load_config({}, repo)
