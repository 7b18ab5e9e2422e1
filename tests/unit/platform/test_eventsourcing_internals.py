"""The non-public parts of eventsourcing we use are all still there (crm_platform's adapter)."""

from __future__ import annotations

from crm_platform.eventsourcing_internals import check_compatible


def test_the_installed_eventsourcing_has_every_part_the_adapter_uses() -> None:
    # If this fails after an upgrade, re-check each use listed in the adapter's docstring.
    assert check_compatible() == []
