"""Who is calling the cockpit, and the credentials it forwards to the APIs for them.

The cockpit decides nothing about permissions: it shows or hides links by role for
convenience, and every API checks the forwarded credentials itself. What the cockpit must get
right is that a caller's requests carry the caller's own credentials and nobody else's:

- dev and issuer sign-in keep the chosen identity (and, with the issuer, its token) in a
  cookie signed with HMAC-SHA256, so it cannot be edited in the browser;
- behind the OIDC proxy the token comes with every request, is forwarded unchanged, and the
  dev headers and the sign-in cookie are refused: a request that names a dev identity is
  misconfigured or forged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from typing import Final

from starlette.requests import Request

from crm_web.settings import SignIn, WebSettings

COOKIE: Final = "crm_cockpit"
COOKIE_MAX_AGE: Final = 12 * 3600  # a working day; the issuer's tokens live one hour
CONSULTANT: Final = "consultant"
SALES_MANAGER: Final = "sales_manager"
ROLES: Final = (CONSULTANT, SALES_MANAGER)


class NotSignedIn(Exception):
    """No usable identity: the sign-in page (dev) or a 401 page (proxy)."""


class Refused(Exception):
    """The request carries something the cockpit never accepts in its mode."""


@dataclass(frozen=True)
class Caller:
    user_id: str
    roles: frozenset[str]
    headers: dict[str, str] = field(repr=False)  # what every API request carries
    name: str | None = None

    @property
    def is_manager(self) -> bool:
        return SALES_MANAGER in self.roles

    @property
    def label(self) -> str:
        return self.name or self.user_id


def dev_headers(user_id: str, roles: frozenset[str]) -> dict[str, str]:
    return {"X-Dev-User": user_id, "X-Dev-Roles": ",".join(sorted(roles))}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- signed cookie


def seal(secret: str, data: dict[str, object], now: float | None = None) -> str:
    body = dict(data, exp=int((now or time.time()) + COOKIE_MAX_AGE))
    payload = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), payload, hashlib.sha256).digest()
    return f"{payload.decode()}.{base64.urlsafe_b64encode(mac).decode()}"


def unseal(secret: str, value: str, now: float | None = None) -> dict[str, object] | None:
    try:
        payload, mac = value.rsplit(".", 1)
        expected = hmac.new(secret.encode(), payload.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(base64.urlsafe_b64decode(mac.encode()), expected):
            return None
        data = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or int(data.get("exp", 0)) < (now or time.time()):
        return None
    return data


# --------------------------------------------------------------------------- per mode


def caller_of(request: Request, settings: WebSettings) -> Caller:
    if settings.sign_in is SignIn.PROXY:
        return _proxied(request, settings)
    if request.headers.get("x-dev-user") or request.headers.get("x-dev-roles"):
        raise Refused("the cockpit takes no X-Dev-* headers; sign in instead")
    sealed = request.cookies.get(COOKIE)
    data = unseal(settings.session_secret, sealed) if sealed else None
    if data is None:
        raise NotSignedIn()
    user_id = str(data["user"])
    roles = frozenset(str(r) for r in data.get("roles", []) or [])  # type: ignore[attr-defined]
    if settings.sign_in is SignIn.DEV:
        headers = dev_headers(user_id, roles)
    else:
        headers = bearer(str(data["token"]))
    return Caller(user_id, roles, headers)


def _proxied(request: Request, settings: WebSettings) -> Caller:
    if request.headers.get("x-dev-user") or request.headers.get("x-dev-roles"):
        raise Refused("dev identities are not accepted behind the sign-in proxy")
    token = request.headers.get(settings.proxy_token_header, "").strip()
    if not token:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = value.strip() if scheme.lower() == "bearer" else ""
    if not token:
        raise NotSignedIn()
    claims = unverified_claims(token)
    user_id = str(
        claims.get("preferred_username") or claims.get("upn") or claims.get("email") or ""
    ).lower()
    roles = claims.get("roles")
    return Caller(
        user_id or "?",
        frozenset(str(r) for r in roles) if isinstance(roles, list) else frozenset(),
        bearer(token),
        name=str(claims["name"]) if claims.get("name") else None,
    )


def unverified_claims(token: str) -> dict[str, object]:
    """The token's claims, to greet the user and choose the pages to offer.

    Not verified here, on purpose: the cockpit grants nothing on them. The APIs verify the
    token on every request, and a forged one gets their 401 and nothing else.
    """
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
