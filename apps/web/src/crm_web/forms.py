"""Form fields → the APIs' request bodies, keeping what was typed for a page shown again.

Field names in the HTML are the API's own paths (`note`, `next_activity.starts_at`,
`discovery_profile.business`), so a problem's `field` names the input it belongs to without a
table in between. Nothing is validated here that the APIs validate: a wrong value goes to the
API, comes back as a problem and is shown beside its field. Only what cannot be sent at all (a
time that is not a time) is caught here, in the same shape.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile

from crm_web.danish import DISCOVERY_FIELDS, from_form_time

PLAN_FIELDS = ("type", "channel", "subject", "agenda", "starts_at", "ends_at")


@dataclass
class Form:
    """What was typed (strings by field name), and the problems found before sending."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def text(self, name: str) -> str | None:
        value = self.values.get(name, "").strip()
        return value or None

    def time(self, name: str) -> str | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return from_form_time(value)
        except ValueError:
            self.errors[name] = "Angiv dato og klokkeslæt."
            return None

    def checked(self, name: str) -> bool:
        return self.values.get(name) in {"on", "true", "1", "ja"}


def read(form: FormData) -> Form:
    return Form({k: v for k, v in form.multi_items() if isinstance(v, str)})


def plan_body(form: Form, prefix: str = "", **fixed: str) -> dict[str, Any]:
    body: dict[str, Any] = dict(fixed)
    for name in PLAN_FIELDS:
        key = prefix + name
        if name in ("starts_at", "ends_at"):
            body[name] = form.time(key)
        elif name == "subject":
            # Sent as typed, blank too: the API's R5 says what a subject must be.
            body[name] = form.get(key).strip()
        else:
            body[name] = form.text(key)
    if body.get("agenda") is None:
        body.pop("agenda", None)
    return body


def wants_next(form: Form) -> bool:
    """The next activity was written (a subject or an agenda): send it, else leave it out.

    Its type, channel and times come prefilled, so they say nothing about the intent."""
    return any(form.text(f"next_activity.{n}") for n in ("subject", "agenda"))


def discovery_body(form: Form) -> dict[str, str | None]:
    return {name: form.text(f"discovery_profile.{name}") for name in DISCOVERY_FIELDS}


async def attachment_body(upload: object, kind: str, link: str | None) -> dict[str, Any] | None:
    """A chosen file as the API's attachment reference: name, type, size and SHA-256.

    The system has no document store: the activity records which document it was (its
    fingerprint) and where it lives when a link is given (SharePoint, say). Without a link the
    reference is the fingerprint itself (`urn:sha256:…`).
    """
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    digest = hashlib.sha256()
    size = 0
    while chunk := await upload.read(1 << 16):
        digest.update(chunk)
        size += len(chunk)
    media_type = (
        upload.content_type
        if upload.content_type and upload.content_type != "application/octet-stream"
        else mimetypes.guess_type(upload.filename)[0] or "application/octet-stream"
    )
    sha = digest.hexdigest()
    return {
        "kind": kind or "other",
        "filename": upload.filename,
        "media_type": media_type,
        "size": size,
        "sha256": sha,
        "uri": link or f"urn:sha256:{sha}",
    }


def defaults(values: Mapping[str, str], **more: str) -> Form:
    return Form({**values, **more})
