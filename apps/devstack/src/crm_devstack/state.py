"""The state directory: which processes run (state.json), where (stack.json), their logs.

state.json is rewritten after every start and stop, so a `down` after a crashed or
interrupted `up` still finds everything that was started.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_devstack.processes import Handle

VERSION = 1


@dataclass(frozen=True)
class Record:
    """A process of the stack as it was started."""

    name: str
    handle: Handle
    port: int
    argv: tuple[str, ...]
    log: str

    def to_json(self) -> dict[str, Any]:
        return {
            **self.handle.to_json(),
            "port": self.port,
            "argv": list(self.argv),
            "log": self.log,
        }

    @classmethod
    def from_json(cls, name: str, data: Mapping[str, Any]) -> Record:
        return cls(
            name,
            Handle.from_json(data),
            int(data["port"]),
            tuple(str(a) for a in data.get("argv", ())),
            str(data.get("log", "")),
        )


@dataclass
class State:
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Record] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # shown by status; no secrets


@dataclass(frozen=True)
class StateDir:
    path: Path

    @property
    def state_file(self) -> Path:
        return self.path / "state.json"

    @property
    def stack_file(self) -> Path:
        return self.path / "stack.json"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def load(self) -> State:
        try:
            raw = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return State()
        except (OSError, ValueError) as error:
            raise StateError(f"{self.state_file} is unreadable ({error}); remove it") from error
        if not isinstance(raw, dict) or raw.get("version") != VERSION:
            raise StateError(f"{self.state_file} is from another devstack version; remove it")
        return State(
            {str(k): int(v) for k, v in raw.get("ports", {}).items()},
            {str(k): Record.from_json(str(k), v) for k, v in raw.get("processes", {}).items()},
            {str(k): str(v) for k, v in raw.get("settings", {}).items()},
        )

    def save(self, state: State) -> None:
        self._write(
            self.state_file,
            {
                "version": VERSION,
                "ports": state.ports,
                "settings": state.settings,
                "processes": {name: r.to_json() for name, r in state.processes.items()},
            },
        )

    def write_stack(self, addresses: Mapping[str, str]) -> None:
        self._write(self.stack_file, dict(addresses))

    def clear(self) -> None:
        for path in (self.state_file, self.stack_file):
            path.unlink(missing_ok=True)

    def _write(self, path: Path, body: Mapping[str, Any]) -> None:
        # Readers (`make demo`, a second `status`) never see a half-written file.
        self.path.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(body, indent=2) + "\n")
        os.replace(partial, path)


class StateError(RuntimeError):
    """The state directory holds something this devstack cannot read."""
