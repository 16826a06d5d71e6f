"""The one error hierarchy of Stratum; the server renders each as a Kubernetes-style Status.

StratumError
├── ApiError                  (has an HTTP code and a Status reason)
│   ├── BadRequest            400  a body that cannot be decoded (malformed JSON/YAML)
│   ├── Invalid               422  bad input: names the field and what was expected
│   ├── NotFound              404
│   ├── AlreadyExists         409
│   ├── Conflict              409  stale resourceVersion, never a lost update
│   ├── Forbidden             403
│   ├── Unauthorized          401
│   ├── Gone                  410  a watch resumed from a compacted resourceVersion
│   ├── PayloadTooLarge       413
│   └── Unavailable           503
├── BackendError              a data-plane backend failed (kept apart from API errors)
├── TemporaryError(delay)     reconcilers: retry after `delay` seconds
└── PermanentError            reconcilers: do not retry until the object changes
"""

from __future__ import annotations

from dataclasses import dataclass, field


class StratumError(Exception):
    """Root of every error Stratum raises on purpose."""


@dataclass(frozen=True, slots=True)
class Cause:
    """One precise reason: which field (dotted path) and what was wrong with it."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"


class ApiError(StratumError):
    code: int = 500
    reason: str = "InternalError"

    def __init__(self, message: str, *, causes: list[Cause] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.causes: list[Cause] = causes or []


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Gone(ApiError):
    code = 410
    reason = "Expired"


class PayloadTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class Unavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class BackendError(StratumError):
    """A backend (simulated, local, agent, kubernetes) could not do what was asked."""


@dataclass
class TemporaryError(StratumError):
    """A reconciler hit something that should pass: retry after `delay` seconds."""

    message: str
    delay: float = 5.0
    extra: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.message} (retry in {self.delay:g}s)"


class PermanentError(StratumError):
    """A reconciler cannot make progress until the object itself changes."""
