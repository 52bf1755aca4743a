"""One error type for the domain; the API turns it into ``{"message", "detail"}`` with a 4xx."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request that cannot be carried out; nothing was changed."""

    status = 400

    def __init__(
        self, message: str, *, detail: dict[str, Any] | None = None, status: int | None = None
    ):
        super().__init__(str(message))
        self.message = str(message)
        self.detail = detail or {}
        if status is not None:
            self.status = status


class NotFound(DomainError):
    status = 404


class PermissionDenied(DomainError):
    status = 403


class Conflict(DomainError):
    status = 409


class ValidationFailed(DomainError):
    """Input that fails validation; ``detail`` maps each field to its problem."""

    status = 422
