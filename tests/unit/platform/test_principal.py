"""Principal: claims → caller, and who may act for whom."""

from __future__ import annotations

from typing import Any

import pytest
from crm_platform.auth import AuthSettings, MissingIdentity, Principal, Role, principal_from_claims


@pytest.fixture
def settings() -> AuthSettings:
    return AuthSettings(issuer="https://issuer", audience="api://crm", jwks_url="https://keys")


def test_claims_map_to_the_principal(settings: AuthSettings) -> None:
    claims: dict[str, Any] = {
        "preferred_username": " Anna.Berg@Example.com ",
        "upn": "ignored@example.com",
        "name": "Anna Berg",
        "roles": ["consultant", "sales_manager"],
    }

    principal = principal_from_claims(claims, settings)

    assert principal == Principal(
        user_id="anna.berg@example.com",
        display_name="Anna Berg",
        roles=frozenset({Role.CONSULTANT, Role.SALES_MANAGER}),
    )


def test_upn_is_the_fallback_and_the_name_defaults_to_the_user_id(
    settings: AuthSettings,
) -> None:
    principal = principal_from_claims({"upn": "bo@example.com", "roles": []}, settings)

    assert principal.user_id == "bo@example.com"
    assert principal.display_name == "bo@example.com"
    assert principal.roles == frozenset()


def test_unknown_and_malformed_roles_are_ignored(settings: AuthSettings) -> None:
    claims = {"upn": "bo@example.com", "roles": ["Consultant", "admin", 7, None, "service"]}

    assert principal_from_claims(claims, settings).roles == frozenset({Role.SERVICE})


def test_a_roles_claim_that_is_not_a_list_gives_no_roles(settings: AuthSettings) -> None:
    assert principal_from_claims({"upn": "a@x", "roles": {"x": 1}}, settings).roles == frozenset()


def test_claim_names_come_from_the_settings() -> None:
    settings = AuthSettings(
        user_claim="email",
        fallback_user_claim="unique_name",
        name_claim="given_name",
        roles_claim="app_roles",
    )
    claims = {"email": "c@example.com", "given_name": "C", "app_roles": ["sales_manager"]}

    principal = principal_from_claims(claims, settings)

    assert (principal.user_id, principal.display_name) == ("c@example.com", "C")
    assert principal.roles == frozenset({Role.SALES_MANAGER})


def test_an_app_only_service_token_is_named_by_its_client_id(settings: AuthSettings) -> None:
    claims = {"azp": "3f2a-calendar-sync", "roles": ["service"]}

    principal = principal_from_claims(claims, settings)

    assert principal.user_id == "3f2a-calendar-sync"
    assert principal.is_service


def test_no_user_claim_and_no_service_role_is_no_identity(settings: AuthSettings) -> None:
    with pytest.raises(MissingIdentity):
        principal_from_claims({"azp": "some-app", "roles": ["consultant"]}, settings)


def _principal(*roles: Role, user_id: str = "anna@example.com") -> Principal:
    return Principal(user_id=user_id, display_name=user_id, roles=frozenset(roles))


def test_a_consultant_acts_only_for_themselves() -> None:
    consultant = _principal(Role.CONSULTANT)

    assert consultant.may_act_for("anna@example.com")
    assert consultant.may_act_for("Anna@Example.com")
    assert not consultant.may_act_for("bo@example.com")
    assert not consultant.is_manager
    assert not consultant.is_service


@pytest.mark.parametrize("role", [Role.SALES_MANAGER, Role.SERVICE])
def test_managers_and_services_act_for_anyone(role: Role) -> None:
    assert _principal(role).may_act_for("bo@example.com")


def test_without_a_role_nobody_acts_even_for_themselves() -> None:
    assert not _principal().may_act_for("anna@example.com")


def test_role_helpers() -> None:
    both = _principal(Role.SALES_MANAGER, Role.SERVICE)

    assert both.is_manager
    assert both.is_service
    assert both.has_any_role(Role.CONSULTANT, Role.SERVICE)
    assert not _principal(Role.CONSULTANT).has_any_role(Role.SERVICE)
