"""JwksCache: caching, the rate-limited refresh on unknown kids, and failures."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from crm_platform.auth import JwksCache, JwksUnavailable
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm


def ec_jwk(kid: str, **extra: Any) -> dict[str, Any]:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    return {**ECAlgorithm.to_jwk(public, as_dict=True), "kid": kid, **extra}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Issuer:
    """A fake fetch: serves `keys`, or fails while `down` is set; counts calls."""

    def __init__(self, *keys: dict[str, Any]) -> None:
        self.keys = list(keys)
        self.down = False
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> Any:
        self.calls += 1
        if self.down:
            raise httpx.ConnectError("connection refused")
        return {"keys": self.keys}


def cache(issuer: Issuer, clock: Clock, **options: Any) -> JwksCache:
    return JwksCache(
        "https://issuer/keys",
        algorithms=("RS256", "ES256"),
        cache_seconds=3600,
        min_refresh_seconds=30,
        failure_backoff_seconds=5,
        fetch=issuer,
        clock=clock,
        **options,
    )


def test_keys_are_fetched_once_and_cached() -> None:
    issuer, clock = Issuer(ec_jwk("a"), ec_jwk("b")), Clock()
    jwks = cache(issuer, clock)

    assert jwks.key_for("a") is not None
    assert jwks.key_for("b") is not None
    clock.now = 3599
    assert jwks.key_for("a") is not None
    assert issuer.calls == 1


def test_the_set_is_fetched_again_when_it_expires() -> None:
    issuer, clock = Issuer(ec_jwk("a")), Clock()
    jwks = cache(issuer, clock)
    jwks.key_for("a")

    clock.now = 3600
    issuer.keys = [ec_jwk("b")]

    assert jwks.key_for("b") is not None
    assert jwks.key_for("a") is None
    assert issuer.calls == 2


def test_unknown_kids_refresh_at_most_once_per_interval() -> None:
    issuer, clock = Issuer(ec_jwk("a")), Clock()
    jwks = cache(issuer, clock)

    assert jwks.key_for("x") is None  # the first load is fresh: no second fetch for the miss
    assert issuer.calls == 1

    clock.now = 30
    assert jwks.key_for("x") is None  # one refresh for the miss...
    assert issuer.calls == 2
    for n in range(50):  # ...and none for a flood of made-up kids
        assert jwks.key_for(f"bogus-{n}") is None
    clock.now = 59.9
    assert jwks.key_for("x") is None
    assert issuer.calls == 2

    clock.now = 60
    issuer.keys.append(ec_jwk("x"))
    assert jwks.key_for("x") is not None
    assert issuer.calls == 3
    assert jwks.key_for("x") is not None
    assert issuer.calls == 3


def test_concurrent_misses_share_one_refresh() -> None:
    issuer, clock = Issuer(ec_jwk("a")), Clock()
    jwks = cache(issuer, clock)
    jwks.key_for("a")
    clock.now = 100
    barrier = threading.Barrier(8)

    def look_up() -> None:
        barrier.wait()
        jwks.key_for("unknown")

    threads = [threading.Thread(target=look_up) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert issuer.calls == 2


def test_no_keys_at_all_is_unavailable_and_backs_off() -> None:
    issuer, clock = Issuer(ec_jwk("a")), Clock()
    issuer.down = True
    jwks = cache(issuer, clock)

    with pytest.raises(JwksUnavailable):
        jwks.key_for("a")
    with pytest.raises(JwksUnavailable):
        jwks.key_for("a")
    assert issuer.calls == 1

    clock.now = 5
    issuer.down = False
    assert jwks.key_for("a") is not None
    assert issuer.calls == 2


def test_the_last_good_set_serves_while_the_issuer_is_down() -> None:
    issuer, clock = Issuer(ec_jwk("a")), Clock()
    jwks = cache(issuer, clock)
    jwks.key_for("a")
    issuer.down = True

    clock.now = 4000
    assert jwks.key_for("a") is not None
    assert jwks.key_for("a") is not None
    assert issuer.calls == 2  # one failed refresh, then the back-off holds

    clock.now = 4005
    issuer.down = False
    assert jwks.key_for("a") is not None
    assert issuer.calls == 3


@pytest.mark.parametrize(
    "unusable",
    [
        {"kty": "oct", "k": "c2VjcmV0", "kid": "a"},  # an HMAC secret must never verify
        {"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB", "alg": "RS512"},  # not allowed
        "not-a-key",
    ],
    ids=["oct", "disallowed_alg", "garbage"],
)
def test_unusable_keys_are_skipped(unusable: Any) -> None:
    issuer, clock = Issuer(unusable, ec_jwk("b")), Clock()

    jwks = cache(issuer, clock)

    assert jwks.key_for("a") is None
    assert jwks.key_for("b") is not None


def test_encryption_keys_and_keys_without_kid_are_skipped() -> None:
    public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    rsa_jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    issuer = Issuer({**rsa_jwk, "kid": "enc", "use": "enc"}, rsa_jwk, ec_jwk("sig", use="sig"))

    jwks = cache(issuer, Clock())

    assert jwks.key_for("enc") is None
    assert jwks.key_for("sig") is not None


def test_a_set_without_usable_keys_counts_as_a_failed_fetch() -> None:
    issuer = Issuer({"kty": "oct", "k": "c2VjcmV0", "kid": "a"})

    with pytest.raises(JwksUnavailable):
        cache(issuer, Clock()).key_for("a")
