"""Graph's error answers, as the fake sends them.

Every Graph error is `{"error": {"code", "message", "innerError": {"date", "request-id",
"client-request-id"}}}` (Outlook resources spell it `innerError`); the `request-id` also comes
back as a response header, and the client's `client-request-id` is echoed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class GraphFault(Exception):
    """An error the fake answers with: HTTP status, Graph error code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_body(
    code: str, message: str, *, request_id: str, client_request_id: str
) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }


def item_not_found() -> GraphFault:
    return GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def stale_change_key() -> GraphFault:
    return GraphFault(
        412,
        "ErrorIrresolvableConflict",
        "The send or update operation could not be performed because the change key passed in "
        "the request does not match the current change key for the item.",
    )


def duplicate_transaction(status: int = 400) -> GraphFault:
    # Seen as 400 and as 409; which one Graph answers is an open point (docs/graph.md).
    return GraphFault(
        status,
        "ErrorDuplicateTransactionId",
        "Your request can't be completed. The TransactionId specified in the request has "
        "already been used to create a different event.",
    )


def too_many_requests(retry_after: str) -> GraphFault:
    return GraphFault(
        429, "TooManyRequests", "Please retry again later.", {"Retry-After": retry_after}
    )


def request_limit(retry_after: str) -> GraphFault:
    # The throttling limits page: 10,000 API requests in a 10 minute period per app and
    # mailbox. The code and message are the fake's; Graph documents 429 and Retry-After.
    return GraphFault(
        429,
        "ApplicationThrottled",
        "Application is over its MailboxRequests limit.",
        {"Retry-After": retry_after},
    )


def invalid_user(mailbox: str) -> GraphFault:
    # A mailbox that does not exist (or no longer: deleted, renamed UPN).
    return GraphFault(404, "ErrorInvalidUser", f"The requested user '{mailbox}' is invalid.")


def mailbox_not_enabled() -> GraphFault:
    # An unlicensed, inactive, soft-deleted or on-premises mailbox.
    return GraphFault(
        404,
        "MailboxNotEnabledForRESTAPI",
        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
    )


def access_denied() -> GraphFault:
    # Missing consent for the application permission, or an application access policy that
    # leaves the mailbox out ("Limiting application permissions to specific mailboxes").
    return GraphFault(
        403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
    )


def mailbox_concurrency(retry_after: str) -> GraphFault:
    return GraphFault(
        429,
        "ApplicationThrottled",
        "Application is over its MailboxConcurrency limit.",
        {"Retry-After": retry_after},
    )


def service_unavailable(retry_after: str) -> GraphFault:
    return GraphFault(
        503,
        "serviceNotAvailable",
        "The service is temporarily unavailable. Try again after a delay.",
        {"Retry-After": retry_after},
    )


def gateway_timeout() -> GraphFault:
    # Graph documents no code for 504; this one is the fake's choice.
    return GraphFault(
        504, "GatewayTimeout", "The gateway did not receive a timely response from upstream."
    )


def bad_request(message: str, code: str = "BadRequest") -> GraphFault:
    return GraphFault(400, code, message)
