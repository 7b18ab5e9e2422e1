"""Write the committed contract documents, or check them for drift.

    uv run python -m crm_contracts.generate            # (re)write schemas/ and asyncapi/
    uv run python -m crm_contracts.generate --check    # exit 1 and list files that differ
    uv run python -m crm_contracts.generate --freeze   # baseline newly published schemas

Output is deterministic (sorted keys, indent 2, trailing newline) so a diff means a change.
``schemas/baseline/`` is never rewritten: it is the frozen first-published copy that
``crm_contracts.compat`` compares against; ``--freeze`` only adds missing files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from crm_contracts.asyncapi import SERVICES, document, schema_path
from crm_contracts.base import Message
from crm_contracts.registry import MESSAGE_TYPES

CONTRACTS_DIR: Final = Path(__file__).resolve().parents[2]
SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"
BASELINE: Final = "schemas/baseline"
_GENERATED_GLOBS: Final = ("schemas/*.json", "asyncapi/*.json")


def message_schema(model: type[Message]) -> dict[str, Any]:
    """The published JSON Schema of one message type."""
    schema = model.model_json_schema(mode="serialization")
    return {"$schema": SCHEMA_DIALECT, **_open_objects(schema)}


def _open_objects(node: Any) -> Any:
    # Producers forbid unknown fields (pydantic), but the published schema is the readers'
    # contract: "additionalProperties: false" there would make every additive change break
    # a reader that validates with it.
    if isinstance(node, dict):
        return {
            k: _open_objects(v)
            for k, v in node.items()
            if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [_open_objects(v) for v in node]
    return node


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render() -> dict[str, str]:
    """Every generated file: path relative to the contracts directory -> content."""
    files = {schema_path(model): dumps(message_schema(model)) for model in MESSAGE_TYPES}
    for service in SERVICES:
        files[f"asyncapi/{service.name}.json"] = dumps(document(service))
    return files


def _existing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for g in _GENERATED_GLOBS for p in root.glob(g)}


def drift(root: Path = CONTRACTS_DIR) -> list[str]:
    """Generated files that are missing, different, or no longer generated (stale)."""
    expected = render()
    differing = [
        path
        for path, content in expected.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != content
    ]
    return sorted(differing + sorted(_existing(root) - expected.keys()))


def write(root: Path = CONTRACTS_DIR) -> list[str]:
    """Bring ``root`` up to date; returns the files written or removed."""
    changed = drift(root)
    expected = render()
    for path in changed:
        target = root / path
        if path in expected:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(expected[path], encoding="utf-8")
        else:
            target.unlink()
    return changed


def freeze(root: Path = CONTRACTS_DIR) -> list[str]:
    """Copy schemas that have no baseline yet into the baseline; never overwrite one."""
    added = []
    for path, content in render().items():
        if not path.startswith("schemas/"):
            continue
        target = root / BASELINE / Path(path).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            added.append(target.relative_to(root).as_posix())
    return added


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_contracts.generate")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="report drift, change nothing")
    mode.add_argument("--freeze", action="store_true", help="baseline unbaselined schemas")
    parser.add_argument("--root", type=Path, default=CONTRACTS_DIR, help="contracts directory")
    args = parser.parse_args(argv)
    root: Path = args.root
    if args.check:
        stale = drift(root)
        for path in stale:
            print(f"out of date: {root / path}", file=sys.stderr)
        if stale:
            print("run: uv run python -m crm_contracts.generate", file=sys.stderr)
        return 1 if stale else 0
    verb = "froze" if args.freeze else "updated"
    for path in freeze(root) if args.freeze else write(root):
        print(f"{verb} {root / path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
