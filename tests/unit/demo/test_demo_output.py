"""The demo's table, its .ics reading, its polling and its HTTP client (no server)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from crm_demo.__main__ import main
from crm_demo.client import ANNA, MIA, Api, Refused, Unreachable
from crm_demo.config import Config
from crm_demo.ics import vevents
from crm_demo.outcome import StepOutcome
from crm_demo.poll import Waited, poll
from crm_demo.table import columns, render, summary

OK = StepOutcome(1, "customers imported", "segments", "5 imported", "5 imported", True)
BAD = StepOutcome(
    6,
    "useless note",
    "R4",
    "refused with R4",
    "201 Created: the note was accepted although it adds nothing " * 3,
    False,
    detail=("customer  segment", "x         A"),
)


def test_the_table_aligns_wraps_and_marks_every_step() -> None:
    text = render([OK, BAD], width=100)
    lines = text.splitlines()
    assert lines[0].startswith("step ")
    assert all(len(line) <= 100 for line in lines)
    separators = {line.index(" | ") for line in lines if " | " in line}
    assert len(separators) == 1  # the first column ends at the same place on every line
    assert "✓" in text
    assert "✗" in text
    assert "    customer  segment" in lines
    assert "201 Created" in text


def test_the_summary_names_the_failed_steps() -> None:
    assert summary([OK]) == "All 1 steps matched the sales guide."
    assert summary([OK, BAD]) == "1 of 2 steps did not match the guide: step 6 (useless note)"


def test_columns_are_as_wide_as_their_widest_cell() -> None:
    assert columns([("a", "bb"), ("ccc", "d")]) == ["a    bb", "ccc  d"]


FEED = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Copenhagen\r\n"
    "END:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:abc@calendar-sync.crm\r\n"
    "SUMMARY:Statusmøde: Status\\, kort – Alfa Avis \r\n ApS\r\n"
    "DTSTART;TZID=Europe/Copenhagen:20261201T140000\r\n"
    "DTEND;TZID=Europe/Copenhagen:20261201T150000\r\nSTATUS:CONFIRMED\r\n"
    "CATEGORIES:CRM,Statusmøde\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\n"
    "DESCRIPTION:reminder\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def test_the_feed_reader_unfolds_unescapes_and_places_times_in_their_zone() -> None:
    (event,) = vevents(FEED)
    assert event.uid == "abc@calendar-sync.crm"
    assert event.summary == "Statusmøde: Status, kort – Alfa Avis ApS"
    assert event.start == datetime(2026, 12, 1, 14, tzinfo=ZoneInfo("Europe/Copenhagen"))
    assert event.start == datetime(2026, 12, 1, 13, tzinfo=UTC)
    assert (event.status, event.categories) == ("CONFIRMED", "CRM,Statusmøde")


def test_poll_returns_the_first_truthy_answer_or_none_at_the_deadline() -> None:
    now = [0.0]
    answers = iter([None, None, "yes"])

    def pause(seconds: float) -> None:
        now[0] += seconds

    found = poll(lambda: next(answers), deadline_s=10, clock=lambda: now[0], pause=pause)
    assert found.value == "yes"
    never: Waited[str] = poll(lambda: None, deadline_s=2, clock=lambda: now[0], pause=pause)
    assert never.value is None
    assert never.seconds >= 2


def service(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/healthz"):
        return httpx.Response(200, json={"status": "ok"})
    if request.url.path == "/token":
        body = json.loads(request.content)
        return httpx.Response(200, json={"access_token": f"t-{body['username']}"})
    return httpx.Response(200, json={"items": []})


def test_dev_headers_name_the_person_and_their_roles() -> None:
    api = Api(Config(), httpx.MockTransport(service))
    assert api.headers(MIA) == {"X-Dev-User": "mia@example.dk", "X-Dev-Roles": "sales_manager"}


def test_bearer_tokens_are_fetched_once_per_person() -> None:
    asked: list[dict[str, object]] = []

    def issuer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            asked.append(json.loads(request.content))
        return service(request)

    api = Api(Config(token_url="http://issuer/token"), httpx.MockTransport(issuer))
    api.check_reachable()
    api.get(ANNA, "activity", "/activities")
    assert api.headers(ANNA) == {"Authorization": "Bearer t-anna@example.dk"}
    assert api.headers(MIA) == {"Authorization": "Bearer t-mia@example.dk"}
    assert asked == [
        {"username": "anna@example.dk", "roles": ["consultant"], "name": "Anna Berg"},
        {"username": "mia@example.dk", "roles": ["sales_manager"], "name": "Mia Holm"},
    ]


def test_a_system_that_does_not_answer_is_unreachable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unreachable, match="activity service"):
        Api(Config(), httpx.MockTransport(down)).check_reachable()


def test_a_system_refusing_the_demos_credentials_says_so() -> None:
    def jwt_only(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/healthz"):
            return httpx.Response(200)
        return httpx.Response(401, json={"code": "unauthenticated", "detail": "no"})

    with pytest.raises(Refused, match="401 unauthenticated"):
        Api(Config(), httpx.MockTransport(jwt_only)).check_reachable()


def test_make_demo_without_a_running_system_says_how_to_start_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("CRM_DEMO_ACTIVITY_URL", f"http://127.0.0.1:{port}/activity")
    assert main() == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "`make run` (or `make up`)" in error
