"""Errors the producer's services raise, each carrying a sentence for the client.

Free of FastAPI: the CLI raises and prints the same errors; ``api.app`` maps each class to its
HTTP status once, so routes never choose status codes for service failures themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Unit = Literal["line", "item"]
"""How a rejected entry is numbered: a JSONL line, or a position in a JSON list."""


@dataclass(frozen=True, slots=True)
class Rejection:
    """A line or item that did not become a request."""

    line: int
    error: str
    unit: Unit = "line"

    @property
    def message(self) -> str:
        return f"{self.unit} {self.line}: {self.error}"

    def as_record(self) -> dict[str, Any]:
        """The form stored in ``batches.rejected`` and returned by the API."""
        return {"line": self.line, "error": self.error, "message": self.message}


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


class BudgetExceededError(SubmissionError):
    """The tenant has reached a daily or monthly budget; the message names it: 402."""
