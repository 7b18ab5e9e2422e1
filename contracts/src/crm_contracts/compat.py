"""Is a JSON Schema a compatible evolution of an earlier one (same ``vN``)?

Within a version only additive, optional changes are allowed, because old and new
producers and consumers share a topic. Breaking, per property (recursing into nested
objects and array items through ``$ref``/``anyOf``):

* a property disappears;
* its type changes (the set of JSON types with their ``format``; adding or dropping
  ``null`` counts, so does turning free text into an enum);
* an optional property becomes required, or a new property arrives required;
* an enum (or const) loses a value.

Adding an optional property or an enum value passes. Descriptions, titles, defaults and
length limits are not compared; a reviewer owns those. Alternatives of a union are matched
by kind, so a union of two different object shapes is compared as one (we publish none).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Schema = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Incompatibility:
    """One breaking difference, at a dotted property path (``<root>`` for the document)."""

    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind} ({self.detail})"


def breaking_changes(old: Schema, new: Schema) -> list[Incompatibility]:
    """Every breaking difference between ``old`` (published) and ``new``."""
    found: list[Incompatibility] = []
    _Comparer(old, new, found).node(old, new, "<root>")
    return found


def compare_directories(current: Path, baseline: Path) -> dict[str, list[Incompatibility]]:
    """Compare every ``*.json`` schema in ``baseline`` with its namesake in ``current``.

    A schema without a baseline is reported too, so a newly published type gets frozen
    (``python -m crm_contracts.generate --freeze``) before it can drift.
    """
    problems: dict[str, list[Incompatibility]] = {}
    frozen = {p.name for p in baseline.glob("*.json")}
    for name in sorted(frozen | {p.name for p in current.glob("*.json")}):
        if name not in frozen:
            problems[name] = [Incompatibility("<root>", "no baseline", "freeze it once published")]
        elif not (current / name).exists():
            problems[name] = [Incompatibility("<root>", "schema removed", "published types stay")]
        else:
            found = breaking_changes(_load(baseline / name), _load(current / name))
            if found:
                problems[name] = found
    return problems


def _load(path: Path) -> Schema:
    loaded: Schema = json.loads(path.read_text(encoding="utf-8"))
    return loaded


class _Comparer:
    def __init__(self, old_root: Schema, new_root: Schema, found: list[Incompatibility]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.found = found

    def report(self, path: str, kind: str, detail: str) -> None:
        self.found.append(Incompatibility(path, kind, detail))

    def node(self, old: Schema, new: Schema, path: str) -> None:
        old_alts = {_kind(a): a for a in _alternatives(old, self.old_root)}
        new_alts = {_kind(a): a for a in _alternatives(new, self.new_root)}
        if old_alts.keys() != new_alts.keys():
            self.report(path, "type changed", f"{_show(old_alts)} -> {_show(new_alts)}")
            return
        for kind, old_alt in old_alts.items():
            new_alt = new_alts[kind]
            if kind[0] == "object":
                self.object(old_alt, new_alt, path)
            elif kind[0] == "array":
                self.node(old_alt.get("items", {}), new_alt.get("items", {}), f"{path}[]")
            lost = _values(old_alt) - _values(new_alt)
            if lost:
                self.report(path, "enum value removed", ", ".join(sorted(lost)))

    def object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        prefix = "" if path == "<root>" else f"{path}."
        for name, old_prop in old_props.items():
            where = prefix + name
            if name not in new_props:
                self.report(where, "property removed", "consumers may read it")
                continue
            if name in new_required and name not in old_required:
                self.report(where, "became required", "old messages lack it")
            self.node(old_prop, new_props[name], where)
        for name in new_props.keys() - old_props.keys():
            if name in new_required:
                self.report(prefix + name, "new required property", "add it as optional")


def _resolve(schema: Schema, root: Schema) -> Schema:
    seen: set[str] = set()
    while "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise ValueError(f"cannot resolve $ref {ref!r}")
        seen.add(ref)
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        schema = target
    return schema


def _alternatives(schema: Schema, root: Schema) -> Iterator[Schema]:
    schema = _resolve(schema, root)
    union = schema.get("anyOf") or schema.get("oneOf")
    if union:
        for option in union:
            yield from _alternatives(option, root)
        return
    all_of = schema.get("allOf")
    if all_of and len(all_of) == 1:
        yield from _alternatives(all_of[0], root)
        return
    types = schema.get("type")
    if isinstance(types, list):
        for one in types:
            yield {**schema, "type": one}
        return
    yield schema


def _kind(schema: Schema) -> tuple[str, str, bool]:
    json_type = schema.get("type")
    if json_type is None and "properties" in schema:
        json_type = "object"
    closed = "enum" in schema or "const" in schema
    return (str(json_type or "any"), str(schema.get("format", "")), closed)


def _values(schema: Schema) -> set[str]:
    if "const" in schema:
        return {json.dumps(schema["const"])}
    return {json.dumps(value) for value in schema.get("enum", ())}


def _show(alternatives: Mapping[tuple[str, str, bool], Schema]) -> str:
    shown = []
    for json_type, fmt, closed in sorted(alternatives):
        label = f"{json_type}:{fmt}" if fmt else json_type
        shown.append(f"enum<{label}>" if closed else label)
    return " | ".join(shown) or "nothing"
