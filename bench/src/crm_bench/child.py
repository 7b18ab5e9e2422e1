"""The measured subjects that run in a process of their own, so their peak RSS is theirs.

`python -m crm_bench.child rebuild <dsn> <schema>`: what `python -m activity
rebuild-read-models` does (a shadow rebuild with `activity.projections.rebuild`), on the
given schema; the CLI itself reads its schema from settings that cannot point at a
benchmark's scratch schema.

`python -m crm_bench.child import <dsn> <schema> <csv> <batch size>`: what `python -m
segmentation import FILE` does (`CustomerImport` as the service actor), likewise.

Each prints one JSON line with what it measured.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from crm_platform.eventstore import StoreLocation

from crm_bench.core import peak_rss_mb


def rebuild(location: StoreLocation) -> dict[str, float]:
    from activity.projections import rebuild as rebuild_read_models

    started = time.perf_counter()
    view = rebuild_read_models(location.env())
    seconds = time.perf_counter() - started
    try:
        timeline = view.query("SELECT COUNT(*) AS n FROM {t}timeline")[0]["n"]
        activities = view.query("SELECT COUNT(*) AS n FROM {t}activities")[0]["n"]
    finally:
        view.close()
    return {"seconds": seconds, "timeline_rows": timeline, "activity_rows": activities}


def import_csv(location: StoreLocation, path: Path, batch_size: int) -> dict[str, float]:
    from segmentation.application import SegmentationApplication
    from segmentation.imports import CustomerImport
    from segmentation.service import SERVICE_ACTOR

    app = SegmentationApplication(location.env())
    try:
        started = time.perf_counter()
        with path.open(encoding="utf-8-sig", newline="") as lines:
            result = CustomerImport(app, SERVICE_ACTOR, batch_size=batch_size).run(lines)
        seconds = time.perf_counter() - started
    finally:
        app.close()
    return {
        "seconds": seconds,
        "imported": result.imported,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": len(result.rejected),
    }


def main(argv: list[str]) -> int:
    task, dsn, schema, *rest = argv
    location = StoreLocation(postgres_dsn=dsn, schema=schema, pool_size=2)
    if task == "rebuild":
        report = rebuild(location)
    elif task == "import":
        report = import_csv(location, Path(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown task {task!r}")
    # Its own high-water mark, from its own memory map (see datasets.run_child).
    report["peak_rss_mb"] = peak_rss_mb(os.getpid())
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
