"""bench/RESULTS.md keeps each ratio's earlier values beside the current one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from crm_bench import report


def _result(ratio: float) -> dict[str, object]:
    return {
        "name": "command_path",
        "title": "t",
        "params": {},
        "subject": {},
        "baseline": {},
        "ratios": {"req/s c1": ratio},
        "ratio_notes": {},
        "targets": {"req/s c1": "≥ 0.5"},
        "peak_rss_mb": {},
        "notes": [],
        "seconds": 1.0,
    }


def test_each_full_run_is_recorded_and_shown_beside_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "scratch"
    results.mkdir()
    host = {
        "cores": 2,
        "cpu": "x",
        "memory_gib": 1,
        "python": "3",
        "postgresql": "p",
        "kafka": "k",
        "packages": {},
    }
    monkeypatch.setattr(report, "machine", lambda dsn=None: host)  # no server to ask here
    for ratio in (0.25, 0.3):
        (results / "command_path.json").write_text(json.dumps(_result(ratio)))
        report.write(results, quick=False)
    (results / "command_path.json").write_text(json.dumps(_result(0.4)))
    table = report.write(results, quick=True).read_text()

    history = json.loads((results / report.HISTORY).read_text())
    assert [run["ratios"]["command_path"]["req/s c1"] for run in history] == [0.25, 0.3]
    assert "| command_path | req/s c1 | 0.4 | 0.25 → 0.3 | ≥ 0.5 |" in table
