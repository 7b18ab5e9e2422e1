"""Which running system the demo plays against, and how it authenticates there.

Precedence (a contract shared with `make up`, which writes the stack file):
1. any `CRM_DEMO_*` variable set: the variables, with the `make run` defaults for the rest;
2. else the stack file (`.cache/devstack/stack.json` under the repo root, or `CRM_DEMO_STACK`);
3. else `make run`'s defaults on http://127.0.0.1:8000 with dev headers.

A partial override never mixes with the stack file: pointing one URL elsewhere while a token
URL from a stale `make up` is silently kept would authenticate against the wrong system.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

EMBEDDED_BASE: Final = "http://127.0.0.1:8000"
ACTIVITY_URL: Final = f"{EMBEDDED_BASE}/activity"
SEGMENTATION_URL: Final = f"{EMBEDDED_BASE}/segmentation"
CALENDAR_URL: Final = f"{EMBEDDED_BASE}/calendar-sync"
DEFAULT_STACK: Final = Path(".cache/devstack/stack.json")
ENV_URLS: Final = {
    "activity": "CRM_DEMO_ACTIVITY_URL",
    "segmentation": "CRM_DEMO_SEGMENTATION_URL",
    "calendar_sync": "CRM_DEMO_CALENDAR_URL",
}
ENV_TOKEN_URL: Final = "CRM_DEMO_TOKEN_URL"  # noqa: S105 (a variable name, not a secret)
ENV_STACK: Final = "CRM_DEMO_STACK"


class ConfigError(ValueError):
    """The stack file exists but cannot be used."""


@dataclass(frozen=True, slots=True)
class Config:
    activity_url: str = ACTIVITY_URL
    segmentation_url: str = SEGMENTATION_URL
    calendar_url: str = CALENDAR_URL
    # None: dev headers (X-Dev-User, X-Dev-Roles); else bearer tokens from this issuer.
    token_url: str | None = None
    source: str = "make run defaults"
    # How long to wait for asynchronous propagation (directory, attainment, feed) per wait.
    wait_s: float = 30.0
    request_timeout_s: float = 10.0

    @property
    def auth_description(self) -> str:
        if self.token_url is None:
            return "dev headers (X-Dev-User / X-Dev-Roles)"
        return f"bearer tokens from {self.token_url}"

    def describe(self) -> str:
        return "\n".join(
            (
                f"Target: {self.source}",
                f"  activity       {self.activity_url}",
                f"  segmentation   {self.segmentation_url}",
                f"  calendar-sync  {self.calendar_url}",
                f"Auth: {self.auth_description}",
            )
        )


def find_repo_root(start: Path) -> Path:
    """The nearest directory holding `uv.lock` (the workspace root); `start` if none."""
    for folder in (start, *start.parents):
        if (folder / "uv.lock").is_file():
            return folder
    return start


def load_config(env: Mapping[str, str], cwd: Path) -> Config:
    overrides = {key: env[name].strip() for key, name in ENV_URLS.items() if env.get(name)}
    token_url = (env.get(ENV_TOKEN_URL) or "").strip() or None
    if overrides or token_url:
        names = sorted(n for n in (*ENV_URLS.values(), ENV_TOKEN_URL) if env.get(n))
        return Config(
            activity_url=_base(overrides.get("activity"), ACTIVITY_URL),
            segmentation_url=_base(overrides.get("segmentation"), SEGMENTATION_URL),
            calendar_url=_base(overrides.get("calendar_sync"), CALENDAR_URL),
            token_url=token_url,
            source="environment: " + ", ".join(names),
        )
    stack = Path(env[ENV_STACK]) if env.get(ENV_STACK) else find_repo_root(cwd) / DEFAULT_STACK
    if not stack.is_absolute():
        stack = cwd / stack
    if stack.is_file():
        return from_stack(stack)
    return Config()


def from_stack(path: Path) -> Config:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object")
    missing = [k for k in ENV_URLS if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise ConfigError(f"{path} lacks {', '.join(missing)}")
    token_url = data.get("token_url")
    return Config(
        activity_url=_base(data["activity"], ""),
        segmentation_url=_base(data["segmentation"], ""),
        calendar_url=_base(data["calendar_sync"], ""),
        token_url=token_url if isinstance(token_url, str) and token_url else None,
        source=f"make up, {path}",
    )


def _base(url: str | None, default: str) -> str:
    return (url or default).rstrip("/")
