"""Planning and completion: plan, move, retype, edit, cancel, complete (with the next activity
and the discovery profile in the same save), attach, register after the fact.

Every command goes to the activity API with the caller's credentials and the version the page
showed (`If-Match`). A refusal comes back as a problem; the same form is drawn again with
everything that was typed and the Danish message beside the field the problem names.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response

from crm_web.backend import Api, ApiProblem
from crm_web.danish import field_errors, form_time, local, now_local
from crm_web.forms import (
    Form,
    attachment_body,
    discovery_body,
    plan_body,
    read,
    wants_next,
)
from crm_web.identity import Caller
from crm_web.pages.common import customer_names, go, owned_customers, seen, signed_in
from crm_web.render import page

router = APIRouter()

MESSAGES: Final = {
    "planlagt": "Aktiviteten er planlagt og sendt til kalenderen.",
    "flyttet": "Aktiviteten er flyttet.",
    "skiftet": "Aktivitetens type er ændret.",
    "rettet": "Aktiviteten er rettet.",
    "aflyst": "Aktiviteten er aflyst.",
    "afsluttet": "Aktiviteten er afsluttet.",
    "registreret": "Aktiviteten er registreret.",
    "bilag": "Bilaget er vedhæftet.",
    "ingen-svar": "Aktiviteten er flyttet, fordi kunden ikke tog telefonen.",
}
WARNINGS: Final = {"overlap": "Bemærk: du har en anden aktivitet på samme tid."}

Command = Callable[[Api, Form, dict[str, Any]], Awaitable[dict[str, Any] | None]]


def after(activity: dict[str, Any] | None, message: str) -> str:
    """Where a command leads: the week of the activity, with a message (and a warning)."""
    if not activity:
        return f"/uge?besked={message}"
    start = local(activity.get("starts_at"))
    url = f"/uge?besked={message}" + (f"&dag={start.date().isoformat()}" if start else "")
    if activity.get("warnings"):
        url += "&advarsel=overlap"
    return url


# --------------------------------------------------------------------------- planning


@router.get("/aktiviteter/ny")
async def plan_form(request: Request, kunde: str = "") -> Response:
    caller, api = signed_in(request)
    start = now_local().replace(minute=0, second=0, microsecond=0)
    values = {
        "customer_id": kunde,
        "owner": caller.user_id,
        "type": "status_meeting",
        "channel": "physical",
        "starts_at": form_time(start.replace(hour=9) + _days(1)),
        "ends_at": form_time(start.replace(hour=10) + _days(1)),
    }
    return await _plan_page(request, caller, api, values, {}, None)


@router.post("/aktiviteter/ny")
async def plan(request: Request) -> Response:
    caller, api = signed_in(request)
    form = read(await request.form())
    body = plan_body(
        form,
        customer_id=form.get("customer_id").strip(),
        owner=form.text("owner") or caller.user_id,
    )
    if not form.errors:
        try:
            planned = await api.post(
                "activity", "/activities", body, idempotency_key=form.get("idempotency_key")
            )
        except ApiProblem as problem:
            errors, general = field_errors(problem.problem, problem.status)
            return await _plan_page(request, caller, api, form.values, errors, general, 422)
        await seen(request, api, planned)
        return go(request, after(planned, "planlagt"))
    return await _plan_page(request, caller, api, form.values, form.errors, None, 422)


async def _new_activity_page(
    template: str,
    nav: str,
    request: Request,
    caller: Caller,
    api: Api,
    values: dict[str, str],
    errors: dict[str, str],
    general: str | None,
    status: int = 200,
) -> Response:
    """The plan and register forms: the caller's customers to choose from."""
    # A fresh key for each drawing: a corrected form is another request, not a repeat.
    values = {**values, "idempotency_key": uuid.uuid4().hex}
    customers = await owned_customers(api, caller.user_id)
    return page(
        request,
        template,
        status,
        caller=caller,
        nav=nav,
        values=values,
        errors=errors,
        general=general,
        customers=customers,
    )


_plan_page = functools.partial(_new_activity_page, "plan.html", "planlaeg")
_register_page = functools.partial(_new_activity_page, "register.html", "registrer")


# --------------------------------------------------------------------------- one activity


@router.get("/aktiviteter/{activity_id}")
async def activity_page(request: Request, activity_id: str, besked: str = "") -> Response:
    caller, api = signed_in(request)
    return await _detail(request, caller, api, activity_id, message=MESSAGES.get(besked))


async def _detail(
    request: Request,
    caller: Caller,
    api: Api,
    activity_id: str,
    *,
    open_form: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    general: str | None = None,
    message: str | None = None,
    status: int = 200,
) -> Response:
    activity, history = await asyncio.gather(
        api.get("activity", f"/activities/{activity_id}"),
        api.get("activity", f"/activities/{activity_id}/history"),
    )
    names = await customer_names(api, [activity["customer_id"]])
    start = now_local().replace(minute=0, second=0, microsecond=0) + _days(7)
    filled = {
        "version": str(activity["version"]),
        "subject": activity.get("subject") or "",
        "agenda": activity.get("agenda") or "",
        "type": activity["type"],
        "channel": activity["channel"],
        "starts_at": form_time(activity["starts_at"]),
        "ends_at": form_time(activity["ends_at"]),
        # Blank: the API takes "now", which is never before the planning (R6) the way a
        # minute-rounded "now" from this page could be.
        "held_at": "",
        "next_activity.type": "status_meeting",
        "next_activity.channel": activity["channel"],
        "next_activity.starts_at": form_time(start.replace(hour=9)),
        "next_activity.ends_at": form_time(start.replace(hour=10)),
        "idempotency_key": uuid.uuid4().hex,
    }
    return page(
        request,
        "activity.html",
        status,
        caller=caller,
        nav="uge",
        activity=activity,
        history=history,
        customer_name=names.get(activity["customer_id"], activity["customer_id"]),
        values={**filled, **(values or {}), "idempotency_key": filled["idempotency_key"]},
        errors=errors or {},
        general=general,
        open_form=open_form,
        message=message,
    )


async def _command(
    request: Request, activity_id: str, name: str, message: str, run: Command
) -> Response:
    caller, api = signed_in(request)
    form = read(await request.form())
    activity = await api.get("activity", f"/activities/{activity_id}")
    try:
        result = await run(api, form, activity) if not form.errors else None
    except ApiProblem as problem:
        errors, general = field_errors(problem.problem, problem.status)
        if problem.code == "stale_version":
            form.values["version"] = str(activity["version"])
        return await _detail(
            request,
            caller,
            api,
            activity_id,
            open_form=name,
            values=form.values,
            errors=errors,
            general=general,
            status=422 if problem.status < 500 else 503,
        )
    if form.errors:
        return await _detail(
            request,
            caller,
            api,
            activity_id,
            open_form=name,
            values=form.values,
            errors=form.errors,
            status=422,
        )
    assert result is not None
    following = None
    if result.get("next_activity_id"):
        following = await api.get("activity", f"/activities/{result['next_activity_id']}")
    await seen(request, api, result, following)
    return go(request, after(following or result, message))


def _version(form: Form, activity: dict[str, Any]) -> int:
    return int(form.get("version") or activity["version"])


@router.post("/aktiviteter/{activity_id}/flyt")
async def move(request: Request, activity_id: str) -> Response:
    async def run(api: Api, form: Form, activity: dict[str, Any]) -> dict[str, Any] | None:
        body: dict[str, Any] = {
            "starts_at": form.time("starts_at"),
            "reason": form.text("reason"),
        }
        if form.text("ends_at"):
            body["ends_at"] = form.time("ends_at")
        if form.text("note"):
            body["note"] = form.text("note")
        if form.errors:
            return None
        return await api.post(  # type: ignore[no-any-return]
            "activity",
            f"/activities/{activity_id}/move",
            body,
            version=_version(form, activity),
        )

    return await _command(request, activity_id, "flyt", "flyttet", run)


@router.post("/aktiviteter/{activity_id}/skift-type")
async def retype(request: Request, activity_id: str) -> Response:
    async def run(api: Api, form: Form, activity: dict[str, Any]) -> dict[str, Any] | None:
        body = {"type": form.text("type"), "channel": form.text("channel")}
        if form.text("retype_reason"):
            body["reason"] = form.text("retype_reason")
        return await api.post(  # type: ignore[no-any-return]
            "activity",
            f"/activities/{activity_id}/retype",
            body,
            version=_version(form, activity),
        )

    return await _command(request, activity_id, "skift-type", "skiftet", run)


@router.post("/aktiviteter/{activity_id}/ret")
async def edit(request: Request, activity_id: str) -> Response:
    async def run(api: Api, form: Form, activity: dict[str, Any]) -> dict[str, Any] | None:
        body = {"subject": form.get("subject").strip(), "agenda": form.text("agenda")}
        return await api.post(  # type: ignore[no-any-return]
            "activity",
            f"/activities/{activity_id}/edit",
            body,
            version=_version(form, activity),
        )

    return await _command(request, activity_id, "ret", "rettet", run)


@router.post("/aktiviteter/{activity_id}/aflys")
async def cancel(request: Request, activity_id: str) -> Response:
    async def run(api: Api, form: Form, activity: dict[str, Any]) -> dict[str, Any] | None:
        body: dict[str, Any] = {"reason": form.get("cancel_reason").strip()}
        if wants_next(form):
            body["next_activity"] = _next(form, activity)
        if form.errors:
            return None
        return await api.post(  # type: ignore[no-any-return]
            "activity",
            f"/activities/{activity_id}/cancel",
            body,
            version=_version(form, activity),
            idempotency_key=form.get("idempotency_key"),
        )

    return await _command(request, activity_id, "aflys", "aflyst", run)


@router.post("/aktiviteter/{activity_id}/afslut")
async def complete(request: Request, activity_id: str) -> Response:
    uploaded = await request.form()

    async def run(api: Api, form: Form, activity: dict[str, Any]) -> dict[str, Any] | None:
        body: dict[str, Any] = {
            "note": form.get("note"),
            "next_step": form.get("next_step"),
        }
        if form.text("held_at"):
            body["held_at"] = form.time("held_at")
        attachment = await attachment_body(
            uploaded.get("attachment"), form.get("attachment_kind"), form.text("attachment_link")
        )
        if attachment:
            body["attachments"] = [attachment]
        if activity["type"] == "discovery_meeting":
            body["discovery_profile"] = discovery_body(form)
        if wants_next(form):
            body["next_activity"] = _next(form, activity)
        if form.errors:
            return None
        return await api.post(  # type: ignore[no-any-return]
            "activity",
            f"/activities/{activity_id}/complete",
            body,
            version=_version(form, activity),
            idempotency_key=form.get("idempotency_key"),
        )

    return await _command(request, activity_id, "afslut", "afsluttet", run)


@router.post("/aktiviteter/{activity_id}/bilag")
async def attach(request: Request, activity_id: str) -> Response:
    uploaded = await request.form()

    async def run(api: Api, form: Form, activity: dict[str, Any]) -> dict[str, Any] | None:
        attachment = await attachment_body(
            uploaded.get("attachment"), form.get("attachment_kind"), form.text("attachment_link")
        )
        if attachment is None:
            form.errors["attachment"] = "Vælg en fil."
            return None
        return await api.post(  # type: ignore[no-any-return]
            "activity",
            f"/activities/{activity_id}/attachments",
            attachment,
            version=_version(form, activity),
        )

    return await _command(request, activity_id, "bilag", "bilag", run)


def _next(form: Form, activity: dict[str, Any]) -> dict[str, Any]:
    return plan_body(
        form,
        "next_activity.",
        customer_id=activity["customer_id"],
        owner=activity["owner"],
    )


# --------------------------------------------------------------------------- registration


@router.get("/registrer")
async def register_form(request: Request, kunde: str = "") -> Response:
    caller, api = signed_in(request)
    start = now_local().replace(minute=0, second=0, microsecond=0) + _days(7)
    values = {
        "customer_id": kunde,
        "type": "status_meeting",
        "channel": "physical",
        "held_at": form_time(now_local()),
        "next_activity.type": "status_meeting",
        "next_activity.channel": "physical",
        "next_activity.starts_at": form_time(start.replace(hour=9)),
        "next_activity.ends_at": form_time(start.replace(hour=10)),
    }
    return await _register_page(request, caller, api, values, {}, None)


@router.post("/registrer")
async def register(request: Request) -> Response:
    caller, api = signed_in(request)
    uploaded = await request.form()
    form = read(uploaded)
    customer_id = form.get("customer_id").strip()
    body: dict[str, Any] = {
        "customer_id": customer_id,
        "owner": caller.user_id,
        "type": form.text("type"),
        "channel": form.text("channel"),
        "booked": form.checked("booked"),
        "held_at": form.time("held_at"),
        "note": form.get("note"),
    }
    for name in ("subject", "next_step"):
        if form.text(name):
            body[name] = form.text(name)
    attachment = await attachment_body(
        uploaded.get("attachment"), form.get("attachment_kind"), form.text("attachment_link")
    )
    if attachment:
        body["attachments"] = [attachment]
    if form.get("type") == "discovery_meeting":
        body["discovery_profile"] = discovery_body(form)
    if wants_next(form):
        body["next_activity"] = plan_body(
            form, "next_activity.", customer_id=customer_id, owner=caller.user_id
        )
    if form.errors:
        return await _register_page(request, caller, api, form.values, form.errors, None, 422)
    try:
        registered = await api.post(
            "activity",
            "/activities/registrations",
            body,
            idempotency_key=form.get("idempotency_key"),
        )
    except ApiProblem as problem:
        errors, general = field_errors(problem.problem, problem.status)
        return await _register_page(request, caller, api, form.values, errors, general, 422)
    following = None
    if registered.get("next_activity_id"):
        following = await api.get("activity", f"/activities/{registered['next_activity_id']}")
    await seen(request, api, registered, following)
    return go(request, after(registered, "registreret"))


def _days(n: int) -> timedelta:
    return timedelta(days=n)
