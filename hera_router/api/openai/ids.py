"""Public ids: OpenAI-looking prefixes over our UUID keys (``file-<hex>``, ``batch_<hex>``).

Parsing happens before any query, so a malformed id (or one with a NUL in it) is simply an
unknown object: 404, never a database error.
"""

from __future__ import annotations

import uuid

FILE_PREFIX = "file-"
BATCH_PREFIX = "batch_"
BATCH_REQUEST_PREFIX = "batch_req_"
COMPLETION_PREFIX = "chatcmpl-"


def file_id(key: uuid.UUID) -> str:
    return f"{FILE_PREFIX}{key.hex}"


def batch_id(key: uuid.UUID) -> str:
    return f"{BATCH_PREFIX}{key.hex}"


def batch_request_id(request_key: uuid.UUID) -> str:
    return f"{BATCH_REQUEST_PREFIX}{request_key.hex}"


def completion_id(request_key: uuid.UUID) -> str:
    return f"{COMPLETION_PREFIX}{request_key.hex}"


def parse(public_id: str, prefix: str) -> uuid.UUID | None:
    """The key behind ``public_id``, or None if it is not one of ours."""
    if not public_id.startswith(prefix):
        return None
    rest = public_id[len(prefix) :]
    if len(rest) != 32:
        return None
    try:
        return uuid.UUID(hex=rest)
    except ValueError:
        return None
