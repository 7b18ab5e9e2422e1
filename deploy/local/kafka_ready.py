"""Exit 0 once a Kafka bootstrap server answers an admin ``list_topics``, else 1.

Usage: python deploy/local/kafka_ready.py BOOTSTRAP [--timeout SECONDS]

Used by deploy/local/kafka.sh (readiness after start, ``status``, and checking an external
``CRM_KAFKA_BOOTSTRAP``). Needs kafka-python; prints progress and errors to stderr only.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

# This script's folder holds kafka/ (the broker's pom.xml), which would shadow kafka-python as a
# namespace package when the interpreter has no kafka-python; never import from here.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bootstrap", help="host:port[,host:port...]")
    parser.add_argument("--timeout", type=float, default=30.0, help="give up after this many s")
    args = parser.parse_args(argv)

    # kafka-python logs every failed connection attempt; keep the retry loop quiet.
    logging.basicConfig(level=logging.CRITICAL)
    from kafka.admin import KafkaAdminClient

    deadline = time.monotonic() + args.timeout
    last_error: Exception | None = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        step_ms = int(max(1.0, min(10.0, remaining)) * 1000)
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=args.bootstrap.split(","),
                client_id="crm-kafka-ready",
                bootstrap_timeout_ms=step_ms,
                request_timeout_ms=step_ms,
            )
            try:
                topics = admin.list_topics()
            finally:
                admin.close()
            print(f"kafka_ready: {args.bootstrap} lists {len(topics)} topic(s)", file=sys.stderr)
            return 0
        except Exception as exc:  # any failure means "not ready yet"
            last_error = exc
            time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    print(f"kafka_ready: {args.bootstrap} not ready: {last_error!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
