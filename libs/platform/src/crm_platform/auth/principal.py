"""Who is calling: the `Principal` and how it is read from token claims."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crm_platform.auth.settings import AuthSettings

__all__ = ["MissingIdentity", "Principal", "Role", "parse_roles", "principal_from_claims"]


class Role(StrEnum):
    """App roles as assigned in the identity provider (the `roles` claim values)."""

    CONSULTANT = "consultant"
    SALES_MANAGER = "sales_manager"
    SERVICE = "service"


class MissingIdentity(ValueError):
    """The claims name no caller: neither user claim, nor a service id for a service."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `user_id` is the caller's mailbox address, lower-cased so it compares equal to the
    owner ids the services store whatever case the identity provider used.
    """

    user_id: str
    display_name: str
    roles: frozenset[Role]

    @property
    def is_manager(self) -> bool:
        return Role.SALES_MANAGER in self.roles

    @property
    def is_service(self) -> bool:
        return Role.SERVICE in self.roles

    def has_any_role(self, *roles: Role) -> bool:
        return not self.roles.isdisjoint(roles)

    def may_act_for(self, owner: str) -> bool:
        """Managers and services act for anyone; a consultant only for themselves."""
        if self.is_manager or self.is_service:
            return True
        return Role.CONSULTANT in self.roles and normalize_user_id(owner) == self.user_id


def normalize_user_id(value: str) -> str:
    return value.strip().lower()


def parse_roles(values: Iterable[Any]) -> frozenset[Role]:
    """Known roles only: unknown strings are other apps' roles and are ignored."""
    known = {role.value: role for role in Role}
    return frozenset(
        known[value.strip()]
        for value in values
        if isinstance(value, str) and value.strip() in known
    )


def principal_from_claims(claims: Mapping[str, Any], settings: AuthSettings) -> Principal:
    raw_roles = claims.get(settings.roles_claim, ())
    if isinstance(raw_roles, str):
        raw_roles = raw_roles.split(",")
    roles = parse_roles(raw_roles if isinstance(raw_roles, list | tuple) else ())

    user_id = _first_text(claims, settings.user_claim, settings.fallback_user_claim)
    if user_id is None and Role.SERVICE in roles:
        # App-only (client-credentials) tokens name an application, not a mailbox.
        user_id = _first_text(claims, settings.service_id_claim)
    if user_id is None:
        raise MissingIdentity(
            f"no {settings.user_claim!r} or {settings.fallback_user_claim!r} claim"
        )
    user_id = normalize_user_id(user_id)
    display_name = _first_text(claims, settings.name_claim) or user_id
    return Principal(user_id=user_id, display_name=display_name, roles=roles)


def _first_text(claims: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
