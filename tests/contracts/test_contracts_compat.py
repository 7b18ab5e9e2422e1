"""Schema compatibility: the checker itself, and the committed schemas against the baseline."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from crm_contracts.compat import breaking_changes, compare_directories
from crm_contracts.generate import CONTRACTS_DIR

SCHEMAS = CONTRACTS_DIR / "schemas"
BASELINE = SCHEMAS / "baseline"

OLD: dict[str, Any] = {
    "$defs": {
        "Colour": {"enum": ["red", "green"], "type": "string"},
        "Inner": {
            "properties": {"depth": {"type": "integer"}},
            "required": ["depth"],
            "type": "object",
        },
    },
    "properties": {
        "id": {"format": "uuid", "type": "string"},
        "name": {"maxLength": 10, "type": "string"},
        "colour": {"$ref": "#/$defs/Colour"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "inner": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}], "default": None},
        "tags": {"items": {"type": "string"}, "type": "array"},
    },
    "required": ["id", "name", "colour"],
    "type": "object",
}


def _edited(edit: Any) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    edit(new)
    return new


def _kinds(new: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c.path, c.kind) for c in breaking_changes(OLD, new)]


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(OLD, copy.deepcopy(OLD)) == []


def test_adding_an_optional_property_passes() -> None:
    new = _edited(lambda s: s["properties"].update(extra={"type": "string"}))

    assert _kinds(new) == []


def test_adding_an_enum_value_passes() -> None:
    new = _edited(lambda s: s["$defs"]["Colour"]["enum"].append("blue"))

    assert _kinds(new) == []


def test_cosmetic_changes_pass() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["name"]["maxLength"] = 20
        s["properties"]["name"]["description"] = "The name."
        s["title"] = "Renamed"

    assert _kinds(_edited(edit)) == []


def test_removing_a_property_breaks() -> None:
    new = _edited(lambda s: s["properties"].pop("note"))

    assert _kinds(new) == [("note", "property removed")]


def test_changing_a_property_type_breaks() -> None:
    new = _edited(lambda s: s["properties"].update(name={"type": "integer"}))

    assert _kinds(new) == [("name", "type changed")]


def test_changing_a_format_breaks() -> None:
    new = _edited(lambda s: s["properties"]["id"].update(format="date-time"))

    assert _kinds(new) == [("id", "type changed")]


def test_dropping_null_from_an_optional_property_breaks() -> None:
    new = _edited(lambda s: s["properties"].update(note={"type": "string"}))

    assert _kinds(new) == [("note", "type changed")]


def test_turning_an_enum_into_free_text_breaks() -> None:
    new = _edited(lambda s: s["properties"].update(colour={"type": "string"}))

    assert _kinds(new) == [("colour", "type changed")]


def test_making_an_optional_property_required_breaks() -> None:
    new = _edited(lambda s: s["required"].append("note"))

    assert _kinds(new) == [("note", "became required")]


def test_adding_a_required_property_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["extra"] = {"type": "string"}
        s["required"].append("extra")

    assert _kinds(_edited(edit)) == [("extra", "new required property")]


def test_removing_an_enum_value_breaks() -> None:
    new = _edited(lambda s: s["$defs"]["Colour"]["enum"].remove("green"))

    changes = breaking_changes(OLD, new)
    assert [(c.path, c.kind) for c in changes] == [("colour", "enum value removed")]
    assert '"green"' in changes[0].detail


def test_nested_changes_are_found_through_refs() -> None:
    new = _edited(lambda s: s["$defs"]["Inner"]["properties"].update(depth={"type": "string"}))

    assert _kinds(new) == [("inner.depth", "type changed")]


def test_array_items_are_compared() -> None:
    new = _edited(lambda s: s["properties"]["tags"].update(items={"type": "integer"}))

    assert _kinds(new) == [("tags[]", "type changed")]


def test_every_breaking_change_is_reported_with_its_path() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"].pop("tags")
        s["required"].append("note")

    assert sorted(_kinds(_edited(edit))) == [
        ("note", "became required"),
        ("tags", "property removed"),
    ]


# --------------------------------------------------------------------- committed schemas


def test_committed_schemas_are_compatible_with_the_baseline() -> None:
    problems = compare_directories(SCHEMAS, BASELINE)

    assert problems == {}, "\n".join(
        f"{name}: {change}" for name, changes in problems.items() for change in changes
    )


def test_every_baseline_is_a_v1_schema_of_a_published_type() -> None:
    names = sorted(p.name for p in BASELINE.glob("*.json"))

    assert names
    assert names == sorted(p.name for p in SCHEMAS.glob("*.v1.json"))


def _copy_contracts(tmp_path: Path) -> tuple[Path, Path]:
    current = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, current)
    return current, current / "baseline"


def test_a_breaking_edit_to_a_committed_schema_is_caught(tmp_path: Path) -> None:
    current, baseline = _copy_contracts(tmp_path)
    target = current / "crm.activity.planned.v1.json"
    schema = json.loads(target.read_text(encoding="utf-8"))
    del schema["properties"]["subject"]
    schema["$defs"]["Channel"]["enum"].remove("email")
    target.write_text(json.dumps(schema), encoding="utf-8")

    problems = compare_directories(current, baseline)

    assert list(problems) == ["crm.activity.planned.v1.json"]
    assert sorted((c.path, c.kind) for c in problems["crm.activity.planned.v1.json"]) == [
        ("channel", "enum value removed"),
        ("subject", "property removed"),
    ]


@pytest.mark.parametrize("which", ["schema", "baseline"])
def test_a_missing_schema_or_baseline_is_caught(tmp_path: Path, which: str) -> None:
    current, baseline = _copy_contracts(tmp_path)
    folder = current if which == "schema" else baseline
    (folder / "crm.customer.snapshot.v1.json").unlink()

    problems = compare_directories(current, baseline)

    kind = "schema removed" if which == "schema" else "no baseline"
    assert [c.kind for c in problems["crm.customer.snapshot.v1.json"]] == [kind]
