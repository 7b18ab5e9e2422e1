"""What every benchmark shares: its context, its result, and where the servers are.

A benchmark is a module with `NAME` and `run(ctx: Context) -> Result`. It measures its subject
and a baseline in the same run, on the same machine and servers, and reports ratios: the
machines are noisy, the ratios much less so. Speed is never asserted here; `--quick` only
shrinks the sizes so `make test` keeps the code working.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
LOCAL_SCRIPTS = REPO / "deploy" / "local"


@dataclass(frozen=True)
class Context:
    """Where a benchmark runs and how big it is."""

    quick: bool
    postgres_dsn: str
    kafka_bootstrap: str
    work_dir: Path  # scratch space for this run (SQLite files, CSVs, logs)
    run_id: str  # unique per run: prefixes schemas, topics and consumer groups
    results: Path = REPO / "bench" / "results"  # where the JSON goes; profiles/ beneath it

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Result:
    """One benchmark's figures. `ratios` are subject/baseline, each named for what it compares
    and oriented as its `ratio_notes` entry says (e.g. "≥ 1 is better")."""

    name: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    subject: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, float] = field(default_factory=dict)
    ratio_notes: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)  # ratio name -> e.g. "≥ 0.5"
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # process label -> MB
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the whole benchmark, set by the runner

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "params": self.params,
            "subject": self.subject,
            "baseline": self.baseline,
            "ratios": self.ratios,
            "ratio_notes": self.ratio_notes,
            "targets": self.targets,
            "peak_rss_mb": self.peak_rss_mb,
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
        }


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (Linux `VmHWM`), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def local_server(script: str, what: str, env_name: str) -> str:
    """The server named by `env_name`, else the one `deploy/local/<script> up` starts."""
    named = os.environ.get(env_name)
    if named:
        return named
    done = subprocess.run(
        ["bash", str(LOCAL_SCRIPTS / script), "up"],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError(f"{script} up printed no {what}")
    return lines[-1].strip()


def postgres_dsn() -> str:
    return local_server("postgres.sh", "DSN", "CRM_BENCH_POSTGRES_DSN")


def kafka_bootstrap() -> str:
    return local_server("kafka.sh", "bootstrap", "CRM_BENCH_KAFKA_BOOTSTRAP")
