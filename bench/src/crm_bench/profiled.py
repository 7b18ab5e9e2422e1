"""`python -m crm_bench.profiled --out FILE -- MODULE ARGS…`: run a module with an all-threads
sampling profiler and write a pyinstrument text report when it exits.

Why not `python -m pyinstrument`: pyinstrument samples only the thread that started it, and
the services do their work elsewhere: FastAPI runs the plain-`def` routes (every command) in
AnyIO's worker threads, relays and consumers run in worker threads of their own. So this
samples every thread's stack with `sys._current_frames()` and hands the samples to
pyinstrument's session and renderer. Samples of a thread that is merely waiting for work
(an idle pool thread, the event loop in `select`) are left out, so the report shows where busy
time goes; waits inside work (a database round trip) stay in, under the code that waited.
Each thread's stack is rooted in a frame named after the thread, e.g. `[AnyIO worker thread]`.

Each busy sample weighs the sampling interval, so the report shows where the busy threads
spend their wall time: CPU, waits on PostgreSQL and waits for the GIL alike. (Weighting by
each thread's CPU from /proc/self/task/*/stat was tried and dropped: on 2 loaded cores the
reads cost the sampler a third of the process's CPU, and a thread's CPU lands on wherever it
waits at the next sample.) The process's CPU time is printed for scale. SIGUSR1 drops what
was sampled so far, so the caller can leave start-up and warm-up out.
"""

from __future__ import annotations

import argparse
import os
import re
import runpy
import signal
import sys
import threading
import time
from pathlib import Path
from types import CodeType, FrameType

from pyinstrument.renderers import ConsoleRenderer
from pyinstrument.session import Session

# (function, file name ending) of a Python frame on top of a thread that waits for work.
_IDLE_LEAVES = (
    ("wait", "threading.py"),
    ("_wait_for_tstate_lock", "threading.py"),
    ("get", "queue.py"),
    ("select", "selectors.py"),
    ("poll", "selectors.py"),
    ("accept", "socket.py"),
    ("_worker", "thread.py"),
)
_DIGITS = re.compile(r"[-_ ]?\d+")


class Sampler:
    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.records: list[tuple[list[str], float]] = []
        self.samples = 0
        self.idle_samples = 0
        self.busy_by_thread: dict[str, float] = {}
        self._reset = threading.Event()
        self.own_cpu = 0.0  # the sampler's own CPU time: the price of this profile
        self._identifiers: dict[CodeType, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)
        self.started = time.time()
        self.duration = 0.0
        self.cpu_before = time.process_time()

    def start(self) -> None:
        self._thread.start()

    def reset(self) -> None:
        """Forget what was sampled so far (done by the sampling thread, between samples)."""
        self._reset.set()

    def _clear(self) -> None:
        self.records = []
        self.samples = self.idle_samples = 0
        self.busy_by_thread = {}
        self.started = time.time()
        self.cpu_before = time.process_time()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _identifier(self, code: CodeType) -> str:
        found = self._identifiers.get(code)
        if found is None:
            found = f"{code.co_name}\x00{code.co_filename}\x00{code.co_firstlineno}"
            self._identifiers[code] = found
        return found

    @staticmethod
    def _idle(frame: FrameType) -> bool:
        code = frame.f_code
        return any(
            code.co_name == name and code.co_filename.endswith(suffix)
            for name, suffix in _IDLE_LEAVES
        )

    def _run(self) -> None:
        own = threading.get_ident()
        last = time.perf_counter()
        started = last
        while not self._stop.wait(self.interval):
            if self._reset.is_set():
                self._reset.clear()
                self._clear()
                started = time.perf_counter()
            now = time.perf_counter()
            weight, last = now - last, now
            threads = {t.ident: t for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == own:
                    continue
                thread = threads.get(ident)
                group = _DIGITS.sub("", thread.name if thread else "thread").strip() or "thread"
                # A LISTEN thread waits inside psycopg like a query does; it is idle all the same.
                idle = self._idle(frame) or group.endswith("listen")
                self.samples += 1
                self.idle_samples += idle
                if idle:
                    continue
                self.records.append((self._stack(frame, group), weight))
                self.busy_by_thread[group] = self.busy_by_thread.get(group, 0.0) + weight
        self.duration = time.perf_counter() - started
        self.own_cpu = time.thread_time()

    def _stack(self, frame: FrameType, group: str) -> list[str]:
        stack: list[str] = []
        walker: FrameType | None = frame
        while walker is not None:
            stack.append(self._identifier(walker.f_code))
            walker = walker.f_back
        stack.append(f"[{group}]\x00<thread>\x000")
        stack.reverse()
        return stack

    def _session(self, records: list[tuple[list[str], float]], description: str) -> Session:
        return Session(
            frame_records=records,
            start_time=self.started,
            duration=self.duration,
            min_interval=self.interval,
            max_interval=self.interval,
            sample_count=len(records),
            start_call_stack=["<bench>\x00<bench>\x000"],
            target_description=description,
            cpu_time=time.process_time() - self.cpu_before,
            sys_path=sys.path,
            sys_prefixes=[sys.prefix, sys.base_prefix],
        )

    def render(self, description: str) -> str:
        wall = self._session(self.records, description)
        header = (
            f"# {description}\n"
            f"# all-threads sampling every {self.interval * 1000:.0f} ms for {self.duration:.1f} s;"
            f" process CPU {wall.cpu_time:.1f} s (the sampler's own: {self.own_cpu:.1f} s since"
            f" start); thread samples {self.samples}, of them idle (waiting for work)"
            f" {self.idle_samples}\n"
            f"# busy wall time per thread: {_per_thread(self.busy_by_thread)}\n"
        )
        sections: list[tuple[str, Session, bool, str]] = [
            ("Flat: self time per function, share of busy samples", wall, True, "self"),
            ("Flat: total time per function (callees included)", wall, True, "total"),
            ("Call tree per thread", wall, False, "self"),
        ]
        text = header
        for title, session, flat, flat_time in sections:
            renderer = ConsoleRenderer(
                unicode=False,
                color=False,
                time="percent_of_total",
                flat=flat,
                flat_time="total" if flat_time == "total" else "self",
            )
            if not flat:
                renderer.processor_options = {"filter_threshold": 0.005}
            text += f"\n## {title}\n" + _trim(renderer.render(session), 60 if flat else 400)
        return text


def _per_thread(seconds_by_thread: dict[str, float]) -> str:
    ordered = sorted(seconds_by_thread.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {seconds:.1f} s" for name, seconds in ordered)


def _trim(rendered: str, lines: int) -> str:
    """The renderer's banner off, and at most `lines` lines of the rest."""
    body = rendered.splitlines()[6:]
    return "\n".join(body[:lines]) + ("\n  …\n" if len(body) > lines else "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_bench.profiled")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("target", nargs=argparse.REMAINDER, help="-- MODULE ARGS…")
    args = parser.parse_args(argv)
    target = args.target[1:] if args.target[:1] == ["--"] else args.target
    if not target:
        parser.error("name the module to run after --")
    module, rest = target[0], target[1:]

    # uvicorn restores the handler it found and raises the signal again after its graceful
    # shutdown; without a handler of ours that would kill the process before the report.
    def exit_on(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_on)
    sampler = Sampler(args.interval)
    signal.signal(signal.SIGUSR1, lambda *_: sampler.reset())
    sampler.start()
    sys.argv = [module, *rest]
    code: object = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as done:
        code = done.code
    except KeyboardInterrupt:
        code = 130
    finally:
        sampler.stop()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(sampler.render(f"python -m {' '.join([module, *rest])}"))
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    # Exit without waiting for the service's daemon threads: the report is written.
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
