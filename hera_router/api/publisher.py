"""Publishing the API's outbox rows off the request path.

The API commits a request with its outbox row and answers 202 at once; the broker only has to
hear about it soon, not before the client does. Publishing inline would make an HTTP request wait
on the broker, and with the broker down every ``send_task`` retries its connection for about a
second, so a 10,000-line batch would hang for hours. Here one background thread publishes, in
chunks, and gives up on a submission at the first chunk that publishes nothing: the rows stay in
the outbox and the relay (beat) publishes them once the broker is back.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from hera_router.pipeline.outbox import Dispatcher

log = logging.getLogger(__name__)

CHUNK = 200
"""Rows published per round trip to the outbox table."""


class BackgroundPublisher:
    """Callable as ``publisher(outbox_ids)``; returns at once."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        # One thread: submissions publish in order, and a dead broker costs one thread, not many.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hera-api-publish")

    def __call__(self, message_ids: Sequence[uuid.UUID]) -> None:
        if message_ids:
            self._executor.submit(self._publish, list(message_ids))

    def _publish(self, message_ids: list[uuid.UUID]) -> None:
        for start in range(0, len(message_ids), CHUNK):
            chunk = message_ids[start : start + CHUNK]
            try:
                published = self.dispatcher.publish(chunk)
            except Exception:  # the rows are durable; never let the thread die on one submission
                log.exception("publishing %d outbox rows failed; the relay will publish them", len(chunk))
                return
            if published == 0:
                log.warning(
                    "the broker accepted none of %d messages; leaving %d to the relay",
                    len(chunk),
                    len(message_ids) - start,
                )
                return

    def close(self) -> None:
        """Stop accepting work; pending publishes are dropped (the relay covers them)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
