"""Import (sales managers): upload a customer or history CSV, watch it go, read what was
rejected, by line number and reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from crm_web.importer import KINDS, BadUpload, Imports
from crm_web.pages.common import is_htmx, signed_in
from crm_web.render import page

router = APIRouter()
MAX_UPLOAD = 50 * 1024 * 1024


def _imports(request: Request) -> Imports:
    found: Imports = request.app.state.imports
    return found


@router.get("/import")
async def import_page(request: Request) -> Response:
    caller, _ = signed_in(request)
    return page(request, "import.html", caller=caller, nav="import", kinds=KINDS)


@router.post("/import")
async def upload(
    request: Request,
    kind: Annotated[str, Form()],
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    caller, api = signed_in(request)
    error = None
    data = await file.read(MAX_UPLOAD + 1) if file is not None and file.filename else b""
    if kind not in KINDS:
        error = "Vælg hvad filen indeholder."
    elif not data:
        error = "Vælg en CSV-fil."
    elif len(data) > MAX_UPLOAD:
        error = "Filen er for stor (højst 50 MB)."
    if error is None:
        try:
            job = _imports(request).start(api, kind, (file.filename if file else "") or "", data)
        except BadUpload as bad:
            error = str(bad)
        else:
            return RedirectResponse(f"/import/{job.id}", 303)
    return page(
        request,
        "import.html",
        422,
        caller=caller,
        nav="import",
        kinds=KINDS,
        error=error,
        chosen=kind,
    )


@router.get("/import/{job_id}")
async def job_page(request: Request, job_id: str) -> Response:
    caller, _ = signed_in(request)
    job = _imports(request).get(job_id, caller.user_id)
    if job is None:
        raise HTTPException(404)
    name = "_import_status.html" if is_htmx(request) else "import_job.html"
    return page(request, name, caller=caller, nav="import", job=job, kinds=KINDS)
