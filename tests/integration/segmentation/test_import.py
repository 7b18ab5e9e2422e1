"""Bulk import from CSV, on SQLite and PostgreSQL: good rows are imported, every bad row is
reported with its line and reasons, a second import of the same file adds no events, changed
rows update, and a batch is written whole or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from crm_platform.auth import Authenticator, AuthSettings
from fastapi.testclient import TestClient
from segmentation.api import SegmentationApi, create_app
from segmentation.application import SegmentationApplication
from segmentation.imports import CustomerImport, read_rows

from tests.integration.segmentation.test_api import ANNA_H, MIA_H
from tests.support.people import MIA

HEADER = "customer_id,name,cvr,owner,potential_dkk,annual_agreement_from,annual_agreement_to\n"
GOOD = (
    "k-1,Bager Hansen ApS,12345678,anna@example.dk,390000,,\n"  # line 2
    'k-2,"Kiosken, Vejle",,,44999.99,,\n'  # line 3
    "k-3,Tømrer Jensen,,,10000,2026-01-01,2026-12-31\n"  # line 4
    "k-4,Ny Kunde,,,,,\n"  # line 5
)
BAD = (
    "k-5,Dyr Kunde,,,mange penge,,\n"  # line 6: non-numeric potential
    "k-6,,,,100,,\n"  # line 7: missing name
    "k-1,Bager Hansen ApS,,,1,,\n"  # line 8: duplicate id
    "k-7,Dato,,,,2026-13-01,2026-12-31\n"  # line 9: bad date
    "k-8,Omvendt,,,,2026-12-31,2026-01-01\n"  # line 10: from > to
    "k-9,CVR,1234,,,,\n"  # line 11: bad CVR
    ",Uden id,,,,,\n"  # line 12: no id
    "k-10,Negativ,,,-5,,\n"  # line 13: negative
    "k-11,Udløbet,,,,2025-01-01,2025-12-31\n"  # line 14: an agreement already over
)
FILE = HEADER + GOOD + BAD


@pytest.fixture
def client(app: SegmentationApplication) -> Iterator[TestClient]:
    auth = Authenticator(AuthSettings(mode="dev"), production_settings_present=False)
    with TestClient(create_app(SegmentationApi(app=app, auth=auth))) as test_client:
        yield test_client


def post(client: TestClient, text: str, headers: dict[str, str] = MIA_H) -> Any:
    return client.post(
        "/customers/import",
        content=text.encode(),
        headers={**headers, "Content-Type": "text/csv"},
    )


def events(app: SegmentationApplication) -> int:
    return int(app.recorder.max_notification_id() or 0)


def test_good_rows_are_imported_and_every_bad_row_is_reported(
    client: TestClient, app: SegmentationApplication
) -> None:
    response = post(client, FILE)
    assert response.status_code == 200, response.json()
    result = response.json()
    assert (result["imported"], result["updated"], result["unchanged"]) == (4, 0, 0)
    rejected = {r["line"]: r for r in result["rejected"]}
    assert sorted(rejected) == list(range(6, 15))
    reasons = {line: " ".join(r["reasons"]) for line, r in rejected.items()}
    assert "not a number" in reasons[6]
    assert "name is missing" in reasons[7]
    assert "twice in the file (first on line 2)" in reasons[8]
    assert "annual_agreement_from" in reasons[9]
    assert "not a date" in reasons[9]
    assert "after annual_agreement_to" in reasons[10]
    assert "CVR" in reasons[11]
    assert "customer_id is missing" in reasons[12]
    assert "negative" in reasons[13]
    assert "ended before today" in reasons[14]
    assert rejected[8]["customer_id"] == "k-1"
    segments = {
        c: client.get(f"/customers/{c}", headers=ANNA_H).json()["segment"]
        for c in ("k-1", "k-2", "k-3", "k-4")
    }
    assert segments == {"k-1": "A", "k-2": "D", "k-3": "annual_agreement", "k-4": "unsegmented"}
    assert client.get("/customers/k-5", headers=ANNA_H).status_code == 404
    k1 = client.get("/customers/k-1", headers=ANNA_H).json()
    assert (k1["potential_source"], k1["owner"], k1["cvr"]) == (
        "import",
        "anna@example.dk",
        "12345678",
    )


def test_importing_the_same_file_again_adds_no_events(
    client: TestClient, app: SegmentationApplication
) -> None:
    post(client, FILE)
    before = events(app)
    again = post(client, FILE).json()
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 4)
    assert len(again["rejected"]) == 9
    assert events(app) == before


def test_a_changed_row_updates_what_it_gives_and_leaves_empty_cells_alone(
    client: TestClient, app: SegmentationApplication
) -> None:
    post(client, HEADER + GOOD)
    changed = (
        HEADER
        + "k-1,Bager Hansen A/S,,,390000,,\n"  # renamed; empty cvr and owner stay
        + "k-2,Kiosken,,bo@example.dk,140000,,\n"  # renamed, owner, potential
        + "k-3,Tømrer Jensen,,,10000,2026-01-01,2026-12-31\n"  # unchanged
        + "k-4,Ny Kunde,87654321,,,,\n"  # a CVR cannot be changed by an import
    )
    result = post(client, changed).json()
    assert (result["imported"], result["updated"], result["unchanged"]) == (0, 2, 1)
    assert [(r["line"], r["customer_id"]) for r in result["rejected"]] == [(5, "k-4")]
    k1 = client.get("/customers/k-1", headers=ANNA_H).json()
    assert (k1["name"], k1["cvr"], k1["owner"]) == (
        "Bager Hansen A/S",
        "12345678",
        "anna@example.dk",
    )
    k2 = client.get("/customers/k-2", headers=ANNA_H).json()
    assert (k2["name"], k2["owner"], k2["potential_dkk"], k2["segment"]) == (
        "Kiosken",
        "bo@example.dk",
        "140000.00",
        "B",
    )


def test_only_managers_import_and_a_file_without_the_columns_is_refused(
    client: TestClient, app: SegmentationApplication
) -> None:
    assert post(client, FILE, ANNA_H).status_code == 403
    missing = post(client, "customer_id,name\nk-1,X\n")
    assert missing.status_code == 422
    assert "potential_dkk" in missing.json()["detail"]
    assert post(client, "").status_code == 422
    wrong = client.post(
        "/customers/import", content=b"{}", headers={**MIA_H, "Content-Type": "application/json"}
    )
    assert wrong.status_code == 415
    latin1 = client.post(
        "/customers/import",
        content=HEADER.encode() + b"k-1,K\xf8benhavn,,,,,\n",
        headers={**MIA_H, "Content-Type": "text/csv"},
    )
    assert (latin1.status_code, latin1.json()["code"]) == (422, "encoding")
    assert events(app) == 0


def test_a_batch_is_written_whole_or_not_at_all(
    app: SegmentationApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = HEADER + "".join(f"b-{i},Kunde {i},,,{i * 1000},,\n" for i in range(6))
    real_save = app.save
    calls = 0

    def failing_second_save(*objs: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("the database went away")
        return real_save(*objs, **kwargs)

    monkeypatch.setattr(app, "save", failing_second_save)
    with pytest.raises(RuntimeError):
        CustomerImport(app, MIA, batch_size=2).run(rows.splitlines(keepends=True))
    ids = [f"b-{i}" for i in range(6)]
    assert app.existing_customer_ids(ids) == {"b-0", "b-1"}
    # Run again: the first batch is unchanged, the rest is imported.
    monkeypatch.setattr(app, "save", real_save)
    result = CustomerImport(app, MIA, batch_size=2).run(rows.splitlines(keepends=True))
    assert (result.imported, result.unchanged, result.rejected) == (4, 2, [])


def test_a_customer_registered_while_its_batch_was_judged_is_looked_at_again(
    app: SegmentationApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = HEADER + "r-1,Kunde,,,1000,,\nr-2,Anden,,,2000,,\n"
    CustomerImport(app, MIA).run((HEADER + "r-1,Kunde,,,1000,,\n").splitlines(keepends=True))
    real = app.existing_customer_ids
    answers = iter([set()])  # the first look misses r-1, as if it were registered just after

    def racing(ids: Any) -> set[str]:
        return next(answers, None) or real(ids)

    monkeypatch.setattr(app, "existing_customer_ids", racing)
    before = events(app)
    result = CustomerImport(app, MIA).run(rows.splitlines(keepends=True))
    assert (result.imported, result.unchanged) == (1, 1)
    assert len(app.history("r-1")) == 3  # registered, assessed, segment changed: once
    assert events(app) > before


def test_rows_are_read_one_at_a_time() -> None:
    def lines() -> Iterator[str]:
        yield HEADER
        yield "s-1,En,,,1,,\n"
        raise AssertionError("read past the first row")

    first = next(read_rows(lines()))
    assert getattr(first, "customer_id", None) == "s-1"
