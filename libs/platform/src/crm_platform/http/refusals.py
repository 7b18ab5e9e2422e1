"""Answering refused commands with the shared problem shape."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder

from crm_platform.errors import CommandRefused, DomainError
from crm_platform.http.errors import ApiError
from crm_platform.idempotency import IdempotencyKeyReused


def install_refusal_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    def domain_error(request: Request, error: DomainError) -> Response:
        return ApiError(
            error.status, error.code, error.message, details=jsonable_encoder(error.details) or None
        ).to_response(instance=request.url.path)

    @app.exception_handler(CommandRefused)
    def refused(request: Request, error: CommandRefused) -> Response:
        # A lost race is worth retrying at once, after reading the resource again.
        headers = {"Retry-After": "0"} if error.status == 409 else None
        return ApiError(
            error.status,
            error.code,
            error.message,
            details=jsonable_encoder(error.details) or None,
            headers=headers,
        ).to_response(instance=request.url.path)

    @app.exception_handler(IdempotencyKeyReused)
    def reused(request: Request, error: IdempotencyKeyReused) -> Response:
        return ApiError(
            422, "idempotency_key_reused", str(error), details={"field": "header.Idempotency-Key"}
        ).to_response(instance=request.url.path)
