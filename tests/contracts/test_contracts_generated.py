"""Generated JSON Schemas and AsyncAPI documents: committed, current, and well-formed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from crm_contracts import MESSAGE_TYPES, Message, type_of
from crm_contracts.asyncapi import SERVICES
from crm_contracts.generate import CONTRACTS_DIR, drift, main, render, write
from crm_contracts.topics import ACTIVITY_EVENTS, CALENDAR_SYNC, CUSTOMERS, R8_GAPS


def _committed() -> dict[str, str]:
    return {
        p.relative_to(CONTRACTS_DIR).as_posix(): p.read_text(encoding="utf-8")
        for pattern in ("schemas/*.json", "asyncapi/*.json")
        for p in CONTRACTS_DIR.glob(pattern)
    }


def test_generating_into_an_empty_directory_reproduces_the_committed_files(
    tmp_path: Path,
) -> None:
    write(tmp_path)

    generated = {
        p.relative_to(tmp_path).as_posix(): p.read_text(encoding="utf-8")
        for p in tmp_path.rglob("*.json")
    }
    assert generated == _committed(), "run: uv run python -m crm_contracts.generate"


def test_committed_files_have_no_drift() -> None:
    assert drift() == [], "run: uv run python -m crm_contracts.generate"


def test_rendering_is_deterministic() -> None:
    assert render() == render()


def _copy(tmp_path: Path) -> Path:
    for folder in ("schemas", "asyncapi"):
        shutil.copytree(CONTRACTS_DIR / folder, tmp_path / folder)
    return tmp_path


def test_a_hand_edited_schema_is_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _copy(tmp_path)
    target = root / "schemas" / "crm.activity.planned.v1.json"
    target.write_text(target.read_text(encoding="utf-8").replace('"Subject"', '"Topic"'))

    assert drift(root) == ["schemas/crm.activity.planned.v1.json"]
    assert main(["--check", "--root", str(root)]) == 1
    assert "crm.activity.planned.v1.json" in capsys.readouterr().err


def test_a_stale_or_missing_file_is_drift(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    (root / "schemas" / "crm.activity.gone.v1.json").write_text("{}\n")
    (root / "asyncapi" / "activity.json").unlink()

    assert drift(root) == ["asyncapi/activity.json", "schemas/crm.activity.gone.v1.json"]
    assert main(["--root", str(root)]) == 0
    assert drift(root) == []
    assert not (root / "schemas" / "crm.activity.gone.v1.json").exists()


def test_check_passes_on_a_fresh_copy(tmp_path: Path) -> None:
    assert main(["--check", "--root", str(_copy(tmp_path))]) == 0


def test_freeze_adds_missing_baselines_but_never_rewrites_one(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    kept = root / "schemas" / "baseline" / "crm.activity.planned.v1.json"
    kept.write_text("{}\n")
    (root / "schemas" / "baseline" / "crm.activity.moved.v1.json").unlink()

    assert main(["--freeze", "--root", str(root)]) == 0

    assert kept.read_text() == "{}\n"
    assert (root / "schemas" / "baseline" / "crm.activity.moved.v1.json").exists()


@pytest.mark.parametrize("model", MESSAGE_TYPES, ids=lambda m: m.__name__)
def test_schema_files_are_draft_2020_12_and_open_to_additions(model: type[Message]) -> None:
    text = (CONTRACTS_DIR / "schemas" / f"{type_of(model)}.json").read_text(encoding="utf-8")
    schema = json.loads(text)

    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == model.__name__
    assert text.endswith("}\n")
    assert '"additionalProperties": false' not in text


def _asyncapi(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (CONTRACTS_DIR / "asyncapi" / f"{name}.json").read_text(encoding="utf-8")
    )
    return loaded


@pytest.mark.parametrize(
    ("service", "sends", "receives"),
    [
        ("activity", {ACTIVITY_EVENTS, R8_GAPS}, {CUSTOMERS}),
        ("segmentation", {CUSTOMERS}, {ACTIVITY_EVENTS}),
        ("calendar-sync", {CALENDAR_SYNC}, {ACTIVITY_EVENTS, CUSTOMERS}),
    ],
)
def test_asyncapi_operations_per_service(service: str, sends: set[str], receives: set[str]) -> None:
    doc = _asyncapi(service)

    assert doc["asyncapi"] == "3.0.0"
    by_action: dict[str, set[str]] = {"send": set(), "receive": set()}
    for operation in doc["operations"].values():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        by_action[operation["action"]].add(doc["channels"][channel]["address"])
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/")
    assert by_action == {"send": sends, "receive": receives}


def test_asyncapi_documents_exist_for_every_service() -> None:
    assert sorted(p.stem for p in (CONTRACTS_DIR / "asyncapi").glob("*.json")) == sorted(
        s.name for s in SERVICES
    )


def test_asyncapi_messages_reference_existing_schemas_and_carry_cloudevents_headers() -> None:
    doc = _asyncapi("activity")

    for message in doc["components"]["messages"].values():
        payload_ref = message["payload"]["$ref"]
        assert (CONTRACTS_DIR / "asyncapi" / payload_ref).resolve().is_file()
        headers = message["headers"]
        assert headers["properties"]["ce_type"]["const"] == message["name"]
        assert set(headers["required"]) == {
            "ce_specversion",
            "ce_id",
            "ce_source",
            "ce_type",
            "ce_time",
            "ce_subject",
            "content-type",
        }
        example = message["examples"][0]
        assert example["headers"]["ce_type"] == message["name"]
