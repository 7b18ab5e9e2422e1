"""Bearer JWT validation end to end: a FastAPI app, a real JWKS served over local HTTP."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import jwt
import pytest
from crm_platform.auth import AuthSettings, JwksCache, tokens
from crm_platform.auth.tokens import VERIFIED_FOR_S, InvalidToken, TokenValidator
from fastapi.testclient import TestClient

from tests.integration.auth.support import (
    FakeClock,
    JwksServer,
    Keys,
    b64url_json,
    claims,
    hs256_token,
    tamper,
    unsigned_token,
)

REFUSED_CHALLENGE = 'Bearer error="invalid_token"'


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(client: TestClient, token: str) -> None:
    response = client.get("/me", headers=bearer(token))
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"] == REFUSED_CHALLENGE
    body = response.json()
    assert body["code"] == "unauthenticated"
    # One message for every failed check: the caller must not learn which one it was.
    assert body["detail"] == "Authentication is required: send valid credentials."


def test_valid_consultant_token_yields_the_principal(
    client: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    response = client.get("/me", headers=bearer(keys.rsa.sign(claims())))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "user_id": "anna.berg@example.com",
        "display_name": "Anna Berg",
        "roles": ["consultant"],
    }
    assert jwks_server.fetches == 1


def test_keys_are_cached_between_requests(
    client: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    for _ in range(5):
        assert client.get("/me", headers=bearer(keys.rsa.sign(claims()))).status_code == 200
    assert jwks_server.fetches == 1


def test_upn_is_the_fallback_and_unknown_roles_are_ignored(client: TestClient, keys: Keys) -> None:
    token = keys.rsa.sign(
        claims(
            preferred_username=None,
            upn="Bo.Manager@example.com",
            name=None,
            roles=["sales_manager", "Directory.Read", "admin"],
        )
    )

    response = client.get("/me", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "user_id": "bo.manager@example.com",
        "display_name": "bo.manager@example.com",
        "roles": ["sales_manager"],
    }


def test_es256_token_is_accepted(client: TestClient, keys: Keys) -> None:
    response = client.get("/me", headers=bearer(keys.ec.sign(claims(roles=["service"]))))

    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["service"]


def test_missing_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/me")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["code"] == "unauthenticated"


def test_a_basic_authorization_header_counts_as_no_token(client: TestClient) -> None:
    response = client.get("/me", headers={"Authorization": "Basic YW5uYTpzZWNyZXQ="})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def _now() -> int:
    return int(time.time())


REFUSED: dict[str, Callable[[Keys], str]] = {
    "expired": lambda k: k.rsa.sign(
        claims(iat=_now() - 7200, nbf=_now() - 7200, exp=_now() - 3600)
    ),
    "expired_beyond_leeway": lambda k: k.rsa.sign(claims(exp=_now() - 90)),
    "not_yet_valid": lambda k: k.rsa.sign(claims(nbf=_now() + 3600, exp=_now() + 7200)),
    "wrong_issuer": lambda k: k.rsa.sign(
        claims(iss="https://login.microsoftonline.com/other/v2.0")
    ),
    "wrong_audience": lambda k: k.rsa.sign(claims(aud="api://some-other-app")),
    "no_expiry": lambda k: k.rsa.sign(claims(exp=None)),
    "no_audience": lambda k: k.rsa.sign(claims(aud=None)),
    "no_user_claim": lambda k: k.rsa.sign(claims(preferred_username=None)),
    "tampered_payload": lambda k: tamper(k.rsa.sign(claims()), roles=["sales_manager"]),
    "forged_with_a_copied_kid": lambda k: k.forger.sign(claims()),
    "alg_none": lambda k: unsigned_token(claims(), kid=k.rsa.kid),
    "hs256_with_public_pem_as_secret": lambda k: hs256_token(
        claims(), secret=k.rsa.public_pem(), kid=k.rsa.kid
    ),
    "es256_header_on_the_rsa_kid": lambda k: k.ec.sign(claims(), kid=k.rsa.kid),
    "not_a_jwt": lambda k: "not-a-jwt",
    "header_without_kid": lambda k: tamper_header_without_kid(k.rsa.sign(claims())),
}


def tamper_header_without_kid(token: str) -> str:
    header = jwt.get_unverified_header(token)
    header.pop("kid")
    _, payload, signature = token.split(".")
    return f"{b64url_json(header)}.{payload}.{signature}"


@pytest.mark.parametrize("make_token", list(REFUSED.values()), ids=list(REFUSED))
def test_bad_tokens_are_refused_alike(
    client: TestClient, keys: Keys, make_token: Callable[[Keys], str]
) -> None:
    assert_refused(client, make_token(keys))


@pytest.mark.parametrize("attack", ["alg_none", "hs256_with_public_pem_as_secret"])
def test_disallowed_algorithms_are_refused_before_any_key_lookup(
    client: TestClient,
    keys: Keys,
    jwks_server: JwksServer,
    caplog: pytest.LogCaptureFixture,
    attack: str,
) -> None:
    with caplog.at_level(logging.INFO, logger="crm_platform.auth"):
        assert_refused(client, REFUSED[attack](keys))

    assert jwks_server.fetches == 0
    assert any("is not allowed" in record.getMessage() for record in caplog.records)


def test_small_clock_skew_is_tolerated(client: TestClient, keys: Keys) -> None:
    slightly_expired = keys.rsa.sign(claims(exp=_now() - 20))
    slightly_early = keys.rsa.sign(claims(nbf=_now() + 20))

    assert client.get("/me", headers=bearer(slightly_expired)).status_code == 200
    assert client.get("/me", headers=bearer(slightly_early)).status_code == 200


def test_the_reason_is_logged_without_the_token(
    client: TestClient, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    token = keys.rsa.sign(claims(aud="api://some-other-app"))

    with caplog.at_level(logging.INFO, logger="crm_platform.auth"):
        assert client.get("/me", headers=bearer(token)).status_code == 401

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "InvalidAudienceError" in logged
    assert token not in logged
    assert token.split(".")[2] not in logged


def test_a_missing_role_is_403(client: TestClient, keys: Keys) -> None:
    response = client.get("/team", headers=bearer(keys.rsa.sign(claims(roles=["consultant"]))))

    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"
    assert "WWW-Authenticate" not in response.headers


def test_the_required_role_passes(client: TestClient, keys: Keys) -> None:
    token = keys.rsa.sign(claims(roles=["consultant", "sales_manager"]))

    response = client.get("/team", headers=bearer(token))

    assert response.status_code == 200, response.text
    assert response.json() == {"manager": "anna.berg@example.com"}


def test_unknown_kid_refreshes_once_then_the_rotated_key_is_accepted(
    client: TestClient, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    assert client.get("/me", headers=bearer(keys.rsa.sign(claims()))).status_code == 200
    assert jwks_server.fetches == 1
    rotated_token = keys.rotated.sign(claims())
    clock.advance(31)

    # Not published yet: refused after exactly one refresh...
    assert_refused(client, rotated_token)
    assert jwks_server.fetches == 2
    # ...and a flood of unknown kids within the refresh interval fetches nothing more.
    for n in range(20):
        assert_refused(client, keys.rotated.sign(claims(), kid=f"bogus-{n}"))
    assert_refused(client, rotated_token)
    assert jwks_server.fetches == 2

    jwks_server.publish(keys.rotated, keys.ec)
    clock.advance(31)

    assert client.get("/me", headers=bearer(rotated_token)).status_code == 200
    assert jwks_server.fetches == 3
    assert client.get("/me", headers=bearer(rotated_token)).status_code == 200
    assert jwks_server.fetches == 3


def test_a_rotated_key_costs_one_fetch(
    client: TestClient, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    assert client.get("/me", headers=bearer(keys.rsa.sign(claims()))).status_code == 200
    jwks_server.publish(keys.rotated, keys.ec)
    clock.advance(31)

    assert client.get("/me", headers=bearer(keys.rotated.sign(claims()))).status_code == 200
    assert jwks_server.fetches == 2
    # The retired key is gone from the refreshed set, and asking for it again fetches nothing.
    assert_refused(client, keys.rsa.sign(claims()))
    assert jwks_server.fetches == 2


def test_an_unreachable_issuer_is_503_not_401(
    client: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    jwks_server.fail_with(500)

    response = client.get("/me", headers=bearer(keys.rsa.sign(claims())))

    assert response.status_code == 503
    assert response.json()["code"] == "auth_unavailable"
    assert response.headers["Retry-After"] == "5"


def test_the_last_good_keys_serve_while_the_issuer_fails(
    client: TestClient, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    assert client.get("/me", headers=bearer(keys.rsa.sign(claims()))).status_code == 200
    jwks_server.fail_with(503)
    clock.advance(3601)  # past the cache lifetime: a refresh is due and fails

    assert client.get("/me", headers=bearer(keys.rsa.sign(claims()))).status_code == 200
    assert jwks_server.fetches == 2


def test_openapi_declares_the_bearer_scheme(client: TestClient) -> None:
    document = client.app.openapi()  # type: ignore[attr-defined]

    schemes = document["components"]["securitySchemes"]
    assert schemes == {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An OAuth 2.0 access token (JWT) issued by Microsoft Entra ID.",
        }
    }
    assert document["paths"]["/me"]["get"]["security"] == [{"bearer": []}]
    parameters = document["paths"]["/me"]["get"].get("parameters", [])
    assert all(p["name"] not in ("X-Dev-User", "X-Dev-Roles") for p in parameters)


# -- a token verified once is believed again, within limits --------------------------------


class WallClock:
    """The validator's wall clock (for `exp`), moved by hand from the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def validator_for(
    settings: AuthSettings, clock: FakeClock, wall: WallClock
) -> tuple[TokenValidator, JwksCache]:
    jwks = JwksCache.from_settings(settings, clock=clock)
    return TokenValidator(settings, jwks, wall_clock=wall), jwks


def test_a_verified_token_is_believed_again_without_a_signature_check(
    settings: AuthSettings, keys: Keys, clock: FakeClock
) -> None:
    validator, _ = validator_for(settings, clock, WallClock())
    token = keys.rsa.sign(claims())

    assert validator.verified(token) is None
    claims_once = validator.validate(token)

    assert validator.verified(token) == claims_once
    # A token never validated, even one differing by its signature only, is not believed.
    assert validator.verified(tamper(token, roles=["sales_manager"])) is None


def test_a_believed_token_expires_with_its_exp_and_after_five_minutes_at_most(
    settings: AuthSettings, keys: Keys, clock: FakeClock
) -> None:
    wall = WallClock()
    validator, _ = validator_for(settings, clock, wall)
    short = keys.rsa.sign(claims(exp=int(wall.now) + 60))
    long = keys.rsa.sign(claims(exp=int(wall.now) + 3600))
    validator.validate(short)
    validator.validate(long)

    wall.now += 61
    assert validator.verified(short) is None
    assert validator.verified(long) is not None
    wall.now += VERIFIED_FOR_S
    assert validator.verified(long) is None


def test_a_believed_token_is_dropped_when_its_key_leaves_the_published_set(
    settings: AuthSettings, keys: Keys, jwks_server: JwksServer, clock: FakeClock
) -> None:
    validator, jwks = validator_for(settings, clock, WallClock())
    token = keys.rsa.sign(claims())
    validator.validate(token)
    jwks_server.publish(keys.rotated, keys.ec)
    clock.advance(3601)  # the key set is due for a refresh: nothing is believed meanwhile

    assert validator.verified(token) is None
    assert jwks.key_for(keys.rotated.kid) is not None  # refreshed: the old key is gone
    assert validator.verified(token) is None
    with pytest.raises(InvalidToken):
        validator.validate(token)


def test_the_believed_tokens_are_bounded(
    settings: AuthSettings, keys: Keys, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "VERIFIED_MAX", 3)
    validator, _ = validator_for(settings, clock, WallClock())
    issued = [keys.rsa.sign(claims(preferred_username=f"k{n}@example.com")) for n in range(4)]
    for token in issued:
        validator.validate(token)

    assert validator.verified(issued[0]) is None
    assert all(validator.verified(token) is not None for token in issued[1:])


def test_a_believed_token_still_reaches_the_route_as_its_principal(
    client: TestClient, keys: Keys, jwks_server: JwksServer
) -> None:
    token = keys.rsa.sign(claims())
    first = client.get("/me", headers=bearer(token))
    again = client.get("/me", headers=bearer(token))

    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert jwks_server.fetches == 1
