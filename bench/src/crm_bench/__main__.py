"""`python -m crm_bench [--quick] [--results DIR] [NAME ...]`: run benchmarks, write results.

Each benchmark writes `<results>/<name>.json`; the runner then writes a table of every JSON
present, with the machine's cores, memory and versions: `bench/RESULTS.md` for the default
`bench/results`, `<results>/RESULTS.md` for any other directory. A benchmark that fails is
reported and the others run; the exit status is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import tempfile
import time
import traceback
import uuid
from pathlib import Path

from crm_bench import core, report

log = logging.getLogger("crm_bench")

# In the order they run: the cheap ones first so a quick look is quick.
BENCHMARKS = (
    "bulk_import",
    "command_path",
    "command_scaleout",
    "propagation",
    "calendar_scaleout",
    "pages",
    "replay",
    "resegmentation",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_bench")
    parser.add_argument("names", nargs="*", help=f"of {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, seconds each")
    parser.add_argument("--results", type=Path, default=core.REPO / "bench" / "results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # httpx logs every request at INFO: in a load generator that is CPU taken from the server.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("kafka").setLevel(logging.WARNING)
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    names = [name for name in BENCHMARKS if not args.names or name in args.names]

    args.results.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-") as scratch:
        ctx = core.Context(
            quick=args.quick,
            postgres_dsn=core.postgres_dsn(),
            kafka_bootstrap=core.kafka_bootstrap(),
            work_dir=Path(scratch),
            run_id=f"b{uuid.uuid4().hex[:8]}",
            results=args.results,
        )
        for name in names:
            module = importlib.import_module(f"crm_bench.{name}")
            log.info("running %s%s", name, " (quick)" if args.quick else "")
            started = time.perf_counter()
            try:
                result: core.Result = module.run(ctx)
            except Exception:
                log.error("%s failed:\n%s", name, traceback.format_exc())
                failed.append(name)
                continue
            result.seconds = time.perf_counter() - started
            path = args.results / f"{name}.json"
            path.write_text(json.dumps(result.as_json(), indent=2, sort_keys=False) + "\n")
            log.info("%s done in %.1f s: %s", name, result.seconds, result.ratios)
    table = report.write(args.results, quick=args.quick, postgres_dsn=ctx.postgres_dsn)
    log.info("wrote %s", table)
    if failed:
        log.error("failed: %s", ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
