"""`python -m crm_demo` (`make demo`): exit 0 when every step matched the guide, 1 when
one did not, 2 when there is no system to play against."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from crm_demo.client import Refused, Unreachable
from crm_demo.config import ConfigError, load_config
from crm_demo.outcome import StepOutcome
from crm_demo.scenario import play
from crm_demo.table import mark, render, summary

START_HINT = "Start the system first: `make run` (or `make up`)."
AUTH_HINT = (
    "`make run` takes dev headers; for `make up` the demo reads its token issuer from "
    ".cache/devstack/stack.json (or CRM_DEMO_TOKEN_URL)."
)


def fail(error: Exception, hint: str = "") -> int:
    print(f"crm_demo: {str(error).rstrip('.')}. {hint}".rstrip(), file=sys.stderr)
    return 2


def progress(outcome: StepOutcome) -> None:
    # Only for a person watching: a step that waits for propagation can take a while.
    # A log gets the table alone.
    if sys.stderr.isatty():
        print(f"  {outcome.step}. {outcome.title} {mark(outcome.ok)}", file=sys.stderr)


def main() -> int:
    try:
        config = load_config(os.environ, Path.cwd())
    except ConfigError as error:
        return fail(error)
    print(config.describe(), flush=True)
    try:
        outcomes = play(config, on_step=progress)
    except Refused as error:
        return fail(error, AUTH_HINT)
    except Unreachable as error:
        return fail(error, START_HINT)
    print()
    print(render(outcomes))
    print(summary(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
