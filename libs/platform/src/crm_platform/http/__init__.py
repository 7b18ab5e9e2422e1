"""Shared HTTP error handling: one JSON error shape, its handlers and a body size limit."""

from crm_platform.http.errors import (
    ApiError,
    ErrorBody,
    Forbidden,
    Unauthenticated,
    error_response,
    error_responses,
)
from crm_platform.http.handlers import field_path, install_error_handlers
from crm_platform.http.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimit, BodyTooLarge

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "ApiError",
    "BodySizeLimit",
    "BodyTooLarge",
    "ErrorBody",
    "Forbidden",
    "Unauthenticated",
    "error_response",
    "error_responses",
    "field_path",
    "install_error_handlers",
]
