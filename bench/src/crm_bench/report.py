"""RESULTS.md from the JSON results: the machine, then one table row per ratio, then memory."""

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


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kb / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "postgresql": _version(["psql", "--version"]),
        "kafka": _kafka_version(),
        "packages": {name: _package(name) for name in PACKAGES},
    }


def write(results: Path, *, quick: bool) -> Path:
    found = [json.loads(path.read_text()) for path in sorted(results.glob("*.json"))]
    target = results.parent / "RESULTS.md"
    target.write_text(render(found, machine(), quick=quick))
    return target


def render(found: list[dict[str, Any]], host: dict[str, Any], *, quick: bool) -> str:
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
        "",
        "| benchmark | ratio | value | target | meaning | subject | baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in found:
        for name, value in result["ratios"].items():
            lines.append(
                f"| {result['name']} | {name} | {value:.2f} | "
                f"{result['targets'].get(name, '')} | {result['ratio_notes'].get(name, '')} | "
                f"{_figures(result['subject'])} | {_figures(result['baseline'])} |"
            )
    lines += ["", "## Peak RSS per process", "", "| benchmark | process | MB |", "|---|---|---|"]
    for result in found:
        for label, mb in result["peak_rss_mb"].items():
            lines.append(f"| {result['name']} | {label} | {mb:.0f} |")
    lines += ["", "## Parameters and notes", ""]
    for result in found:
        params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
        lines.append(f"- **{result['name']}** ({result['title']}; {result['seconds']} s): {params}")
        lines += [f"  - {note}" for note in result["notes"]]
    return "\n".join(lines) + "\n"


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
