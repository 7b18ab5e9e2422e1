"""The OpenAPI document as HTTP carries the parameters.

FastAPI documents an optional header or query parameter (`str | None`) as
`anyOf: [<schema>, {"type": "null"}]`. HTTP has no null for them: a parameter is there or it
is not. Generators and fuzzers read the null branch as the text `null`, which is no valid
value. So the null branch goes; the parameter stays optional (`required: false`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

__all__ = ["tidy_parameters"]

_NULL = {"type": "null"}


def tidy_parameters(app: FastAPI) -> None:
    """Make `app.openapi()` document optional parameters without a null branch."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict):
                    for parameter in operation.get("parameters", ()):
                        _drop_null(parameter)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_null(parameter: dict[str, Any]) -> None:
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if not options or _NULL not in options:
        return
    rest = [option for option in options if option != _NULL]
    kept = {k: v for k, v in schema.items() if k != "anyOf"}
    parameter["schema"] = {**rest[0], **kept} if len(rest) == 1 else {**kept, "anyOf": rest}
