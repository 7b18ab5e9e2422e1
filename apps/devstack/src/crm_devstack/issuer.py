"""A local token issuer for the production-like mode on one machine.

The services run with `AUTH_MODE=jwt` under `make up` exactly as in production (dev headers are
refused once PostgreSQL or Kafka is configured); this issuer plays Entra ID's part on loopback:
it signs RS256 access tokens shaped like Entra v2 tokens and publishes its key as a JWKS. It
hands a token to anyone who asks, so it only ever binds to a loopback address.

- `GET  /discovery/v2.0/keys`: the JWKS (AUTH_JWKS_URL);
- `POST /token` with JSON `{"username": "...", "roles": ["consultant"], "name": "..."}` →
  `{"access_token": "...", "token_type": "Bearer", "expires_in": 3600}`. With only the role
  `service` the token is app-only: `azp` names the caller and there is no user claim.

The key is kept in a PEM file so tokens stay valid across a restart of the issuer.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

log = logging.getLogger("crm_devstack.issuer")

AUDIENCE = "api://crm-local"
JWKS_PATH = "/discovery/v2.0/keys"
TOKEN_PATH = "/token"  # noqa: S105 (a URL path, not a secret)
TOKEN_TTL_S = 3600
MAX_REQUEST_BYTES = 4096


def load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} does not hold an RSA private key")
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Written 0600 from the start: it signs tokens the services accept.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(pem)
    return key


@dataclass(frozen=True)
class Issuer:
    """Signs tokens for `issuer_url`; `kid` is derived from the key so it survives restarts."""

    key: rsa.RSAPrivateKey
    issuer_url: str
    audience: str = AUDIENCE

    @property
    def kid(self) -> str:
        numbers = self.key.public_key().public_numbers()
        return uuid.uuid5(uuid.NAMESPACE_OID, f"{numbers.n:x}").hex[:16]

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": self.kid, "use": "sig"}]}

    def mint(
        self, username: str, roles: list[str], name: str | None = None, ttl_s: int = TOKEN_TTL_S
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer_url,
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "roles": roles,
            "tid": "local",
        }
        if roles == ["service"]:
            claims["azp"] = username
        else:
            claims["preferred_username"] = username
            claims["name"] = name or username
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})


def _handler(issuer: Issuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == JWKS_PATH:
                self._json(200, issuer.jwks())
            elif self.path == "/healthz":
                self._json(200, {"status": "ok"})
            else:
                self._json(404, {"code": "not_found", "message": f"no {self.path} here"})

        def do_POST(self) -> None:
            if self.path != TOKEN_PATH:
                self._json(404, {"code": "not_found", "message": f"no {self.path} here"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_REQUEST_BYTES:
                self._json(413, {"code": "too_large", "message": "token request too large"})
                return
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
                username = request["username"]
                roles = request.get("roles", ["consultant"])
                if not isinstance(username, str) or not username.strip():
                    raise ValueError("username")
                if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                    raise ValueError("roles")
            except (ValueError, KeyError, TypeError):
                self._json(
                    422,
                    {
                        "code": "validation_error",
                        "message": 'send {"username": "...", "roles": ["consultant"]}',
                    },
                )
                return
            token = issuer.mint(username.strip(), roles, request.get("name"))
            self._json(
                200, {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_TTL_S}
            )

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug(format, *args)

    return Handler


def serve(key_path: Path, host: str, port: int) -> ThreadingHTTPServer:
    """Bind (loopback only) and return the server; the caller runs `serve_forever`."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(
            f"the local issuer signs tokens for anyone; bind it to loopback, not {host}"
        )
    server = ThreadingHTTPServer((host, port), BaseHTTPRequestHandler)
    bound_port = server.server_address[1]
    issuer = Issuer(load_or_create_key(key_path), f"http://{host}:{bound_port}")
    server.RequestHandlerClass = _handler(issuer)
    return server


def auth_env(host: str, port: int) -> dict[str, str]:
    """The AUTH_* settings that make a service accept this issuer's tokens."""
    base = f"http://{host}:{port}"
    return {
        "AUTH_MODE": "jwt",
        "AUTH_ISSUER": base,
        "AUTH_AUDIENCE": AUDIENCE,
        "AUTH_JWKS_URL": base + JWKS_PATH,
        "AUTH_ALGORITHMS": "RS256",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_devstack.issuer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8010)
    parser.add_argument("--key", type=Path, default=Path(".cache/devstack/issuer-key.pem"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    server = serve(args.key, args.host, args.port)
    log.info("issuing tokens at http://%s:%d%s", args.host, server.server_address[1], TOKEN_PATH)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
