"""Bearer tokens for the services under test: the local issuer of `make up`, in this process.

The services refuse dev headers once PostgreSQL is configured, so the bench authenticates the
way production does: RS256 tokens checked against a JWKS. The issuer serves the JWKS from a
thread here; tokens are minted directly, without an HTTP round trip per consultant.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crm_devstack.issuer import Issuer, auth_env, load_or_create_key, serve

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LocalIdentity:
    issuer: Issuer
    env: dict[str, str]  # AUTH_* for the services

    def bearer(self, username: str, roles: tuple[str, ...] = ("consultant",)) -> dict[str, str]:
        token = self.issuer.mint(username, list(roles))
        return {"Authorization": f"Bearer {token}"}


@contextmanager
def local_identity(work_dir: Path) -> Iterator[LocalIdentity]:
    key_path = work_dir / "issuer-key.pem"
    server = serve(key_path, HOST, 0)
    port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="issuer", daemon=True)
    thread.start()
    try:
        issuer = Issuer(load_or_create_key(key_path), f"http://{HOST}:{port}")
        yield LocalIdentity(issuer, auth_env(HOST, port))
    finally:
        server.shutdown()
        server.server_close()
