"""Shared HTTP error handling: one problem shape (RFC 9457), its handlers, strict routes and a
body size limit; the API docs pages with their assets served locally."""

from crm_platform.http.docs import install_api_docs
from crm_platform.http.errors import (
    API_ERROR_STATUSES,
    PROBLEM_MEDIA_TYPE,
    ApiError,
    Forbidden,
    Problem,
    Unauthenticated,
    error_response,
    error_responses,
)
from crm_platform.http.handlers import field_path, install_error_handlers
from crm_platform.http.limits import DEFAULT_MAX_BODY_BYTES, BodySizeLimit, BodyTooLarge
from crm_platform.http.routes import StrictRoute, location

__all__ = [
    "API_ERROR_STATUSES",
    "DEFAULT_MAX_BODY_BYTES",
    "PROBLEM_MEDIA_TYPE",
    "ApiError",
    "BodySizeLimit",
    "BodyTooLarge",
    "Forbidden",
    "Problem",
    "StrictRoute",
    "Unauthenticated",
    "error_response",
    "error_responses",
    "field_path",
    "install_api_docs",
    "install_error_handlers",
    "location",
]
