"""RESULTS.md from the JSON results: the machine, then one table row per ratio, then memory.

Memory: every process a benchmark measured is held against the 200 MB target, except the
baselines' (a label naming "baseline"), which are there for comparison only.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("eventsourcing", "fastapi", "uvicorn", "psycopg", "kafka-python", "pydantic")
RSS_TARGET_MB = 200.0
# Debian's server binary; `psql` on PATH may be another version than the server.
POSTGRES_BINARY = Path("/usr/lib/postgresql/15/bin/postgres")


def machine(postgres_dsn: str | None = None) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "postgresql": _postgres_version(postgres_dsn),
        "kafka": _kafka_version(),
        "packages": {name: _package(name) for name in PACKAGES},
    }


HISTORY = "history.json"
SHOWN_RUNS = 4


def write(results: Path, *, quick: bool, postgres_dsn: str | None = None) -> Path:
    found = [
        json.loads(path.read_text())
        for path in sorted(results.glob("*.json"))
        if path.name != HISTORY
    ]
    # bench/results/*.json → bench/RESULTS.md (committed); any other directory keeps its own.
    target = results.parent / "RESULTS.md" if results.name == "results" else results / "RESULTS.md"
    history = _record(results / HISTORY, found, quick=quick)
    target.write_text(render(found, machine(postgres_dsn), quick=quick, history=history))
    return target


def _record(path: Path, found: list[dict[str, Any]], *, quick: bool) -> list[dict[str, Any]]:
    """The runs before this one, oldest first; this run is appended to the file, so the
    table can show each ratio beside its earlier values (quick runs are not kept)."""
    history: list[dict[str, Any]] = json.loads(path.read_text()) if path.exists() else []
    if not quick:
        run = {
            "written": f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
            "ratios": {r["name"]: r["ratios"] for r in found},
        }
        path.write_text(json.dumps([*history, run], indent=1) + "\n")
    return history


def render(
    found: list[dict[str, Any]],
    host: dict[str, Any],
    *,
    quick: bool,
    history: list[dict[str, Any]] | None = None,
) -> str:
    history = history or []
    lines = [
        "# Benchmark results",
        "",
        f"Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench{'-quick' if quick else ''}`"
        f"; {host['cores']} cores ({host['cpu']}), {host['memory_gib']} GiB; "
        f"Python {host['python']}, {host['postgresql']}, Kafka {host['kafka']}; "
        + ", ".join(f"{k} {v}" for k, v in host["packages"].items())
        + ".",
        "",
        "Every ratio is the subject over a baseline measured in the same run on the same machine.",
        f"`earlier` shows the same ratio in the last {SHOWN_RUNS} recorded runs, oldest first "
        f"(`bench/results/{HISTORY}`, dates: "
        + (", ".join(run["written"] for run in history[-SHOWN_RUNS:]) or "none")
        + ").",
        "",
        "| benchmark | ratio | value | earlier | target | meaning | subject | baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for result in found:
        for name, value in result["ratios"].items():
            earlier = [
                run["ratios"].get(result["name"], {}).get(name) for run in history[-SHOWN_RUNS:]
            ]
            lines.append(
                f"| {result['name']} | {name} | {value:.3g} | "
                + " → ".join("–" if v is None else f"{v:.3g}" for v in earlier)
                + f" | {result['targets'].get(name, '')} | {result['ratio_notes'].get(name, '')} | "
                f"{_figures(_relevant(result['subject'], name))} | "
                f"{_figures(_relevant(result['baseline'], name))} |"
            )
    lines += _memory(found)
    lines += ["", "## Parameters and notes", ""]
    for result in found:
        params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
        lines.append(f"- **{result['name']}** ({result['title']}; {result['seconds']} s): {params}")
        lines += [f"  - {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


def _memory(found: list[dict[str, Any]]) -> list[str]:
    rows = [(r["name"], label, mb) for r in found for label, mb in r["peak_rss_mb"].items()]
    services = [row for row in rows if "baseline" not in row[1].lower()]
    over = [row for row in services if row[2] > RSS_TARGET_MB]
    lines = ["", "## Memory: peak RSS per process", ""]
    if services:
        name, label, mb = max(services, key=lambda row: row[2])
        verdict = (
            f"all {len(services)} within the {RSS_TARGET_MB:.0f} MB target"
            if not over
            else f"{len(over)} of {len(services)} over the {RSS_TARGET_MB:.0f} MB target: "
            + ", ".join(f"{lbl} ({n}) {v:.0f} MB" for n, lbl, v in over)
        )
        lines += [
            f"Service processes: {verdict}; the largest is {label} ({name}) at {mb:.0f} MB.",
            "",
        ]
    lines += ["| benchmark | process | MB | ≤ 200 MB |", "|---|---|---|---|"]
    for name, label, mb in rows:
        mark = (
            "baseline" if "baseline" in label.lower() else ("yes" if mb <= RSS_TARGET_MB else "NO")
        )
        lines.append(f"| {name} | {label} | {mb:.0f} | {mark} |")
    return lines


def _relevant(values: dict[str, float], ratio: str) -> dict[str, float]:
    """The figures a ratio is about, when their names say so (e.g. "c8 …" for "req/s c8"):
    a benchmark measured at several levels would otherwise repeat all of them on every row."""
    words = set(ratio.split())
    chosen = {k: v for k, v in values.items() if k.split(" ", 1)[0] in words}
    return chosen or values


def _figures(values: dict[str, float]) -> str:
    return "; ".join(f"{k} {v:,.4g}" for k, v in values.items())


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _postgres_version(dsn: str | None) -> str:
    """The server's own answer when it can be asked, else the server binary's."""
    if dsn:
        try:
            import psycopg

            with psycopg.connect(dsn, connect_timeout=5) as conn:
                row = conn.execute("SHOW server_version").fetchone()
            if row:
                return f"PostgreSQL {row[0]}"
        except Exception:  # the report must not fail for want of a version string
            pass
    if POSTGRES_BINARY.exists():
        return _version([str(POSTGRES_BINARY), "--version"])
    return _version(["psql", "--version"])


def _kafka_version() -> str:
    pom = Path(__file__).resolve().parents[3] / "deploy" / "local" / "kafka" / "pom.xml"
    text = pom.read_text() if pom.exists() else ""
    marker = "<kafka.version>"
    if marker in text:
        return text.split(marker, 1)[1].split("<", 1)[0]
    return "unknown"


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
