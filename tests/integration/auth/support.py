"""Keys, a local JWKS server and token builders for the auth tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://login.microsoftonline.com/00000000-0000-0000-0000-0000000000aa/v2.0"
AUDIENCE = "api://crm-activity"
JWKS_PATH = "/discovery/v2.0/keys"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    private_key: PrivateKeyTypes

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def public_jwk(self) -> dict[str, Any]:
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            assert isinstance(public, ec.EllipticCurvePublicKey)
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        # Like Entra: kid and use, and no `alg` member (PyJWT derives it from kty/crv).
        return {**jwk, "kid": self.kid, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], *, kid: str | None = None) -> str:
        return jwt.encode(
            claims,
            self.private_key,  # type: ignore[arg-type]
            algorithm=self.alg,
            headers={"kid": kid or self.kid},
        )


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims shaped like an Entra v2 access token for a consultant, valid for 10 minutes."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "preferred_username": "Anna.Berg@Example.com",
        "name": "Anna Berg",
        "roles": ["consultant"],
        "oid": "7f0c4b8e-0000-0000-0000-000000000001",
        "tid": "00000000-0000-0000-0000-0000000000aa",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def unsigned_token(payload: dict[str, Any], kid: str) -> str:
    """`alg: none`, built by hand: exactly what an attacker would send."""
    return f"{b64url_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64url_json(payload)}."


def hs256_token(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """HS256 keyed with `secret`: the classic key-confusion attack when secret = public PEM."""
    signing_input = (
        f"{b64url_json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64url_json(payload)}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def tamper(token: str, **changes: Any) -> str:
    """Swap the payload for a modified one and keep the original signature."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded.update(changes)
    return f"{header}.{b64url_json(decoded)}.{signature}"


@dataclass
class JwksServer:
    """Serves a JWKS from 127.0.0.1 on a port the OS picks, counting the fetches."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    fetches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def start(self) -> JwksServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                with owner._lock:
                    owner.fetches += 1
                    status, body = owner.status, json.dumps({"keys": owner.keys}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll interval keeps `shutdown()` (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{JWKS_PATH}"

    def publish(self, *keys: SigningKey) -> None:
        with self._lock:
            self.keys = [key.public_jwk() for key in keys]

    def fail_with(self, status: int) -> None:
        with self._lock:
            self.status = status

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class Keys:
    rsa: SigningKey
    ec: SigningKey
    rotated: SigningKey
    # Same kid as `rsa`, different key material: a forger who copied the kid.
    forger: SigningKey

    @classmethod
    def generate(cls) -> Keys:
        return cls(
            rsa=SigningKey.rsa("rsa-1"),
            ec=SigningKey.ec("ec-1"),
            rotated=SigningKey.rsa("rsa-2"),
            forger=SigningKey.rsa("rsa-1"),
        )
