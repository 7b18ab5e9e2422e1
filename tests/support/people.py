"""The callers the tests act as."""

from __future__ import annotations

from crm_platform.auth.principal import Principal, Role

ANNA = Principal("anna@example.dk", "Anna Jensen", frozenset({Role.CONSULTANT}))
BO = Principal("bo@example.dk", "Bo Nielsen", frozenset({Role.CONSULTANT}))
MIA = Principal("mia@example.dk", "Mia Holm", frozenset({Role.SALES_MANAGER}))
SERVICE = Principal("segmentation-service", "Segmentation", frozenset({Role.SERVICE}))


def dev_headers(principal: Principal) -> dict[str, str]:
    """What a caller sends to a dev-mode service to act as `principal`."""
    return {
        "X-Dev-User": principal.user_id,
        "X-Dev-Roles": ",".join(sorted(r.value for r in principal.roles)),
    }
