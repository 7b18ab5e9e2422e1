"""Imports from the browser: a CSV sent to the API in slices, so the page can show progress.

Both imports (customers to segmentation, past activities to activity) answer only when a
whole file is done, and both are idempotent (a row on record again changes nothing). The
cockpit cuts the file into slices of `SLICE` records, each with the header, and sends them one
after another with the caller's credentials; the page polls the job. The API's line numbers
are the slice's: each is mapped back to the line of the uploaded file, so a rejected row is
found where the person saw it.

Jobs live in this process's memory for an hour: behind several replicas the ingress keeps a
person on one (docs/web.md).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from crm_web.backend import Api, ApiProblem
from crm_web.danish import Reason, import_reason, problem_message

SLICE: Final = 500
KEEP_SECONDS: Final = 3600
KINDS: Final = {
    # kind: (service, path, what the page calls it)
    "kunder": ("segmentation", "/customers/import", "Kunder"),
    "historik": ("activity", "/imports", "Historik fra det tidligere CRM"),
}


@dataclass
class Rejected:
    line: int
    key: str | None
    reasons: list[Reason]


@dataclass
class Job:
    id: str
    owner: str
    kind: str
    filename: str
    total: int
    done: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    error: str | None = None
    finished: bool = False
    started: float = field(default_factory=time.monotonic)

    @property
    def share(self) -> int:
        return 100 if not self.total else round(100 * self.done / self.total)


@dataclass
class Slice:
    text: str
    lines: dict[int, int]  # the slice's line number → the file's
    records: int


class BadUpload(ValueError):
    """The file is not a CSV the cockpit can cut (not UTF-8, no header)."""


def slices(data: bytes, size: int = SLICE) -> tuple[int, list[Slice]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise BadUpload("Filen skal være gemt som UTF-8.") from error
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise BadUpload("Filen er tom; første linje skal være kolonnernes navne.")
    found: list[Slice] = []
    total = 0
    out, lines, count = _start(header)
    ended = 1  # the slice's lines so far: its header
    for record in reader:
        if not any(cell.strip() for cell in record):
            continue
        start = out.tell()
        csv.writer(out, lineterminator="\n").writerow(record)
        # The API numbers a row by the line it ends on, as csv's reader does; a quoted cell
        # may hold line breaks.
        ended += out.getvalue()[start:].count("\n")
        lines[ended] = reader.line_num
        count += 1
        total += 1
        if count == size:
            found.append(Slice(out.getvalue(), lines, count))
            out, lines, count = _start(header)
            ended = 1
    if count:
        found.append(Slice(out.getvalue(), lines, count))
    return total, found


def _start(header: list[str]) -> tuple[io.StringIO, dict[int, int], int]:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(header)
    return out, {}, 0


class Imports:
    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, api: Api, kind: str, filename: str, data: bytes) -> Job:
        self._forget_old()
        total, parts = slices(data)
        job = Job(uuid.uuid4().hex, api.caller.user_id, kind, filename, total)
        self.jobs[job.id] = job
        task = asyncio.create_task(self._run(api, job, parts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    def get(self, job_id: str, user_id: str) -> Job | None:
        job = self.jobs.get(job_id)
        return job if job is not None and job.owner == user_id else None

    async def _run(self, api: Api, job: Job, parts: list[Slice]) -> None:
        service, path, _ = KINDS[job.kind]
        try:
            for part in parts:
                response = await api.request(
                    service,
                    "POST",
                    path,
                    content=part.text.encode(),
                    headers={"Content-Type": "text/csv; charset=utf-8"},
                )
                self._count(job, part, response.json())
        except ApiProblem as problem:
            job.error = problem_message(problem.problem, problem.status)
            detail = problem.problem.get("detail")
            if problem.code == "file" and detail:
                job.error += f" ({detail})"
        finally:
            job.finished = True

    @staticmethod
    def _count(job: Job, part: Slice, answer: dict[str, Any]) -> None:
        job.done += part.records
        job.imported += int(answer.get("imported", 0))
        job.updated += int(answer.get("updated", 0))
        job.unchanged += int(answer.get("unchanged", 0))
        for item in answer.get("rejected", []):
            line = int(item.get("line", 0))
            job.rejected.append(
                Rejected(
                    part.lines.get(line, line),
                    item.get("customer_id") or item.get("external_id"),
                    [
                        import_reason(str(r), lambda n: part.lines.get(n, n))
                        for r in item.get("reasons", [])
                    ],
                )
            )

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key in [
            k for k, j in self.jobs.items() if j.finished and now - j.started > KEEP_SECONDS
        ]:
            del self.jobs[key]
