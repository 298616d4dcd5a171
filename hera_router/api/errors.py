"""Errors the producer's services raise, each carrying a sentence for the client.

Free of FastAPI: the CLI raises and prints the same errors; ``api.app`` maps each class to its
HTTP status once, so routes never choose status codes for service failures themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hera_router.api.validation import Rejection


class SubmissionError(Exception):
    """Base class; ``str(error)`` is the message shown to the client."""


class InvalidRequestError(SubmissionError):
    """The submitted request (or a batch-wide option) is not acceptable: 422."""


class TooLargeError(SubmissionError):
    """The submission exceeds a size limit (batch size, body bytes): 413."""


class BatchRejectedError(SubmissionError):
    """No line of the batch was acceptable, so no batch was created: 422 with every line's error."""

    def __init__(self, message: str, rejected: Sequence[Rejection]) -> None:
        super().__init__(message)
        self.rejected = list(rejected)


class NotFoundError(SubmissionError):
    """The object does not exist or belongs to another tenant (never told apart): 404."""


class NotCancellableError(SubmissionError):
    """The request already finished and cannot be cancelled: 409."""
