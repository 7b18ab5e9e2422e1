"""The cockpit without a browser: problems in Danish by field, the import's line numbers,
the production sign-in (the proxy's token forwarded, dev identities refused), and an import
through the cockpit into the real segmentation service."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from crm_web.app import create_app
from crm_web.backend import Backend
from crm_web.danish import field_errors, import_reason
from crm_web.importer import slices
from crm_web.settings import SignIn, WebSettings
from fastapi.testclient import TestClient

from tests.e2e.embedded_process import EmbeddedProcess
from tests.support.polling import wait_until


def test_a_rule_refusal_lands_beside_its_field_and_r10_names_each_missing_field() -> None:
    errors, general = field_errors(
        {"code": "R8", "rule": "R8", "field": "next_activity", "detail": "…"}, 409
    )
    assert general is None
    assert "prioriteret" in errors["next_activity"]

    errors, _ = field_errors(
        {"code": "R10", "rule": "R10", "field": "discovery_profile", "missing": ["strategy"]},
        422,
    )
    assert errors["discovery_profile.strategy"] == "Skal udfyldes (R10)."

    errors, _ = field_errors(
        {
            "code": "validation_error",
            "errors": [{"field": "body.next_activity.starts_at", "type": "missing"}],
        },
        422,
    )
    assert errors == {"next_activity.starts_at": "Skal udfyldes."}

    errors, general = field_errors({"code": "stale_version"}, 412)
    assert errors == {}
    assert general is not None
    assert "ændret" in general


def test_slices_keep_the_files_line_numbers() -> None:
    data = b'id,note\n1,a\n\n2,"two\nlines"\n3,c\n'
    total, parts = slices(data, size=2)
    assert total == 3
    assert [p.records for p in parts] == [2, 1]
    # Slice 1: header (1), "1,a" (2), the two-line record ends on 4; the file: 2 and 5.
    assert parts[0].lines == {2: 2, 4: 5}
    assert parts[1].lines == {2: 6}


def proxied(seen: list[httpx.Request]) -> TestClient:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    settings = WebSettings(sign_in=SignIn.PROXY)
    backend = Backend(settings, httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    return TestClient(create_app(settings, backend))


def test_behind_the_proxy_the_token_is_forwarded_and_dev_identities_are_refused() -> None:
    seen: list[httpx.Request] = []
    client = proxied(seen)
    token = "eyJhbGciOiJub25lIn0.eyJwcmVmZXJyZWRfdXNlcm5hbWUiOiJhbm5hQGV4YW1wbGUuZGsifQ.x"

    assert client.get("/log-ind", headers={"accept": "text/html"}).status_code == 404
    assert client.get("/kunder?q=x").status_code == 401
    refused = client.get(
        "/kunder?q=x",
        headers={"X-Dev-User": "mia@example.dk", "X-Forwarded-Access-Token": token},
    )
    assert refused.status_code == 400
    assert seen == []

    found = client.get("/kunder?q=bager", headers={"X-Forwarded-Access-Token": token})
    assert found.status_code == 200
    assert "anna@example.dk" in found.text
    assert seen[0].headers["authorization"] == f"Bearer {token}"
    assert "x-dev-user" not in seen[0].headers


def test_a_tampered_session_cookie_signs_nobody_in() -> None:
    settings = WebSettings(sign_in=SignIn.DEV)
    client = TestClient(create_app(settings), follow_redirects=False)
    signed = client.post("/log-ind", data={"user": "anna@example.dk", "role": "consultant"})
    cookie = signed.cookies["crm_cockpit"]
    payload, mac = cookie.rsplit(".", 1)
    forged = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB") + "." + mac
    client.cookies.set("crm_cockpit", forged)
    response = client.get("/uge")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/log-ind")


def test_an_import_shows_progress_and_the_rejected_rows_by_line(system: EmbeddedProcess) -> None:
    run = uuid.uuid4().hex[:6]
    csv = (
        "customer_id,name,cvr,owner,potential_dkk,annual_agreement_from,annual_agreement_to\n"
        f"imp-{run}-1,Import Et ApS,,anna@example.dk,50000,,\n"
        f"imp-{run}-2,Import To ApS,,anna@example.dk,ikke et tal,,\n"
        f"imp-{run}-3,Import Tre ApS,,anna@example.dk,400000,,\n"
    )
    with httpx.Client(base_url=system.base, headers={"accept": "text/html"}) as client:
        client.post("/log-ind", data={"user": "mia@example.dk", "role": "sales_manager"})
        started = client.post(
            "/import",
            data={"kind": "kunder"},
            files={"file": ("kunder.csv", csv.encode(), "text/csv")},
            follow_redirects=False,
        )
        assert started.status_code == 303, started.text
        job = started.headers["location"]

        def finished() -> Any:
            page = client.get(job, headers={"HX-Request": "true"})
            return page if "import-faerdig" in page.text else None

        done = wait_until(finished, timeout=30, message="the import to finish")
    assert "3 af 3 rækker" in done.text
    assert "2 nye" in done.text
    assert "1 afviste" in done.text
    rejected = re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td>", done.text)
    assert rejected == [("3", f"imp-{run}-2")]
    assert "»potential_dkk«: &#39;ikke et tal&#39; er ikke et beløb" in done.text


def test_every_rejection_reason_the_imports_word_is_said_in_danish() -> None:
    """Each kind of reason both import APIs give, from their own validators: said in Danish
    (the cockpit knows the kind by the column it names), none left in English."""
    from datetime import UTC, datetime

    from activity import imports as history
    from segmentation import imports as customers

    customer_rows = [
        ",".join(customers.COLUMNS),
        ",Uden Id ApS,,anna@example.dk,,,",
        "k1,,,anna@example.dk,ikke et tal,,",
        "k1,Igen ApS,,anna@example.dk,,2026-02-30,",
        "k2,Aftale ApS,,anna@example.dk,,2026-05-01,2026-02-01",
        "k3,For kort",
    ]
    history_rows = [
        ",".join(history.REQUIRED),
        ",,ikke en mail,møde,brevdue,i går,",
        "e1,k1,anna@example.dk,contact,phone,2999-01-01,Ringede om kampagnen",
        "e1,k1,anna@example.dk,contact,phone,2026-01-05,Ringede om kampagnen",
    ]
    reasons = [
        reason
        for row in customers.read_rows(customer_rows)
        if isinstance(row, customers.RowProblem)
        for reason in row.reasons
    ] + [
        reason
        for _, row in history.read_rows(history_rows, datetime.now(UTC))
        if isinstance(row, history.RowProblem)
        for reason in row.reasons
    ]
    assert len(reasons) >= 12, reasons
    said = {reason: import_reason(reason, lambda n: n + 100) for reason in reasons}
    english = [reason for reason, found in said.items() if found.lang != "da"]
    assert english == []
    twice = next(found.text for reason, found in said.items() if "twice" in reason)
    # The API's line is its slice's; the cockpit names the uploaded file's.
    assert twice == "»customer_id« står to gange i filen (første gang på linje 103)."
    assert import_reason("something new").lang == "en"


def test_the_team_page_shows_what_answered_when_a_report_is_too_slow() -> None:
    """A report over every customer can outlast the API timeout at scale: the team page then
    says which report is missing and shows the others, instead of failing whole."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/reports/attainment"):
            raise httpx.ReadTimeout("too slow", request=request)
        if request.url.path.endswith("/reports/moves"):
            return httpx.Response(200, json={"total": 3, "by_reason": {}, "owners": []})
        if request.url.path.endswith("/reports/behind-target"):
            return httpx.Response(200, json={"total": 0, "items": []})
        return httpx.Response(200, json=[{"owner": "anna@example.dk", "customer_id": "k1"}])

    settings = WebSettings(sign_in=SignIn.PROXY)
    backend = Backend(settings, httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    client = TestClient(create_app(settings, backend))
    token = "eyJhbGciOiJub25lIn0.eyJwcmVmZXJyZWRfdXNlcm5hbWUiOiJtaWFAZXhhbXBsZS5kayJ9.x"
    page = client.get("/team", headers={"X-Forwarded-Access-Token": token})
    assert page.status_code == 200
    assert "Målopfyldelsen kunne ikke hentes" in page.text
    assert "3 flytninger i alt" in page.text
    assert "<td>anna@example.dk</td><td>1</td>" in page.text
