"""The route class every CRM API uses: what FastAPI lets through, refused at the door.

FastAPI ignores query parameters it does not know and reads a JSON body sent with any
Content-Type (or as bytes a validator then fails on), so a typo in `?onwer=` silently lists
everything and a form post gets a confusing 422. `StrictRoute` refuses both clearly: an
unknown query parameter is 422 naming it, a body that is not `application/json` (or `+json`)
is 415, and a body that is not UTF-8 is 400 `malformed_json` like any other unreadable JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from crm_platform.http.errors import ApiError

__all__ = ["StrictRoute", "is_json_media_type", "location"]

Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class StrictRoute(APIRoute):
    """An APIRoute that refuses unknown query parameters and non-JSON bodies."""

    def get_route_handler(self) -> Endpoint:
        handle = super().get_route_handler()
        known = _query_names(self.dependant)
        takes_json = self.body_field is not None

        async def strict(request: Request) -> Response:
            unknown = sorted({name for name in request.query_params if name not in known})
            if unknown:
                raise RequestValidationError(
                    [
                        {
                            "type": "unknown_parameter",
                            "loc": ("query", name),
                            "msg": "Unknown query parameter"
                            + (f"; known: {', '.join(sorted(known))}" if known else ""),
                            "input": None,
                        }
                        for name in unknown
                    ]
                )
            if takes_json:
                await _require_json(request)
            return await handle(request)

        return strict


def _query_names(dependant: Dependant) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _query_names(dependency)
    return frozenset(names)


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = media.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def _require_json(request: Request) -> None:
    body = await request.body()
    if not body:
        return  # FastAPI answers a missing body with 422 naming it
    content_type = request.headers.get("content-type")
    if not is_json_media_type(content_type):
        raise ApiError(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            f"Send the body as application/json, not {content_type or 'without a Content-Type'}.",
            details={"accepted": ["application/json"]},
        )
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "malformed_json",
            f"The request body is not valid JSON: it is not UTF-8 (at byte {error.start}).",
            details={"position": error.start},
        ) from None


def location(request: Request, *segments: str) -> str:
    """The path of a resource under this app, as a `Location` header: each segment
    percent-encoded, behind the prefix the app is served under (`/activity` in `make run`)."""
    root: str = request.scope.get("root_path", "")
    return root + "".join("/" + quote(segment, safe="@:+~") for segment in segments)
