"""Identity and access for the CRM APIs: who is calling, and what they may do.

Build one `Authenticator` per app from `AuthSettings` (env prefix `AUTH_`) and use its
`principal` and `require_roles(...)` dependencies in routes: every operation that depends on
them declares the mode's security schemes in the OpenAPI document (`bearer` in `jwt` mode,
`devUser`/`devRoles` in `dev` mode). Pair it with `crm_platform.http.install_error_handlers`,
which turns 401/403 into the shared error shape.
"""

from crm_platform.auth.dependencies import (
    BEARER_SCHEME,
    DEV_CHALLENGE,
    DEV_ROLES_SCHEME,
    DEV_USER_SCHEME,
    Authenticator,
    PrincipalDependency,
    SecurityRequirement,
)
from crm_platform.auth.jwks import Fetch, JwksCache, JwksUnavailable, http_fetch
from crm_platform.auth.principal import (
    MissingIdentity,
    Principal,
    Role,
    parse_roles,
    principal_from_claims,
)
from crm_platform.auth.settings import (
    ALLOWED_ALGORITHMS,
    AuthMode,
    AuthSettings,
    ConfigurationError,
    check_auth_mode,
)
from crm_platform.auth.tokens import InvalidToken, TokenValidator

__all__ = [
    "ALLOWED_ALGORITHMS",
    "BEARER_SCHEME",
    "DEV_CHALLENGE",
    "DEV_ROLES_SCHEME",
    "DEV_USER_SCHEME",
    "AuthMode",
    "AuthSettings",
    "Authenticator",
    "ConfigurationError",
    "Fetch",
    "InvalidToken",
    "JwksCache",
    "JwksUnavailable",
    "MissingIdentity",
    "Principal",
    "PrincipalDependency",
    "Role",
    "SecurityRequirement",
    "TokenValidator",
    "check_auth_mode",
    "http_fetch",
    "parse_roles",
    "principal_from_claims",
]
