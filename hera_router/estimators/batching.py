"""Micro-batching of estimator inference across the threads of one router process.

A router worker running the ``threads`` pool decides several requests at once, and each decision
makes a few small encoder calls (URC on the request, DP on the subtask, SBERT on the current
subtask and request for the SP roll-out). One at a time, every call pays a full forward pass for
one sentence; the MiniLM forward pass on two CPU cores costs about as much for 16 sentences as for
three. :class:`MicroBatcher` coalesces the calls that arrive while the model is busy into the next
forward pass ("batch while busy", the dynamic batching of Triton / TF-Serving with a zero default
delay): at low load a call runs at once, alone, with no added latency; under load the batch grows
with the queue, so throughput does not collapse.

:func:`micro_batched` wraps an :class:`~hera_router.routing.estimators.Estimators` bundle: URC, DP
and the SBERT embedder behind the embedding SP predictor go through one batcher each; the SD and
the generative SP (a generation per call) are left as they are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

import numpy as np

from hera_router.estimators.similarity import Embedder
from hera_router.routing.estimators import Estimators, Vector

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(slots=True)
class _Slot(Generic[In, Out]):
    item: In
    done: bool = False
    value: Out | None = None
    error: BaseException | None = None


@dataclass(slots=True)
class BatchStats:
    """What a batcher did: calls, forward passes and the largest batch (for metrics and tests)."""

    items: int = 0
    batches: int = 0
    largest: int = 0
    sizes: list[int] = field(default_factory=list)

    @property
    def mean_batch(self) -> float:
        return self.items / self.batches if self.batches else 0.0


class MicroBatcher(Generic[In, Out]):
    """Run ``fn`` on batches of the items that concurrent callers submit. Thread-safe.

    The first caller to find a free lane becomes a leader: it waits up to ``max_wait_s`` for
    company (0 by default: no wait), takes up to ``max_batch`` pending items, runs ``fn`` outside
    the lock and hands each caller its own result (or the batch's exception). Callers that arrive
    while every lane is busy queue; when a leader finishes, one of them leads the next batch.

    ``lanes``: how many batches may run at once. One lane serialises every forward pass, which
    is right when torch already uses every core for one pass; with one torch thread per pass
    (``HERA_ESTIMATORS__TORCH_THREADS=1``) a single lane would leave the other cores idle while
    unbatched calls from concurrent threads ran in parallel (measured slower than not batching at
    all on two loaded cores). The router uses cores / torch threads lanes.
    """

    def __init__(
        self,
        fn: Callable[[Sequence[In]], Sequence[Out]],
        *,
        max_batch: int = 32,
        max_wait_s: float = 0.0,
        lanes: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_batch < 1 or lanes < 1:
            raise ValueError("max_batch and lanes must be at least 1")
        self.lanes = lanes
        self._fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._cond = threading.Condition()
        self._pending: list[_Slot[In, Out]] = []
        self._running = 0
        self.stats = BatchStats()

    def __call__(self, item: In) -> Out:
        return self.submit_many([item])[0]

    def submit_many(self, items: Sequence[In]) -> list[Out]:
        """Results for ``items`` in order; they may be split over several batches."""
        slots = [_Slot[In, Out](item) for item in items]
        with self._cond:
            self._pending.extend(slots)
            self._cond.notify_all()
        while True:
            with self._cond:
                while self._running >= self.lanes and not all(slot.done for slot in slots):
                    self._cond.wait()
                if all(slot.done for slot in slots):
                    break
                self._running += 1
                batch = self._gather()
                if not batch:  # another lane took this caller's items: wait for that batch
                    self._running -= 1
                    self._cond.wait()
                    continue
            self._run(batch)
        for slot in slots:
            if slot.error is not None:
                raise slot.error
        return [slot.value for slot in slots]  # type: ignore[misc]  # done ⇒ value set

    def _gather(self) -> list[_Slot[In, Out]]:
        """Take the next batch (called holding the lock, as the leader)."""
        if self.max_wait_s > 0:
            deadline = self._clock() + self.max_wait_s
            while len(self._pending) < self.max_batch and (remaining := deadline - self._clock()) > 0:
                self._cond.wait(remaining)
        batch = self._pending[: self.max_batch]
        del self._pending[: self.max_batch]
        return batch

    def _run(self, batch: list[_Slot[In, Out]]) -> None:
        try:
            values = list(self._fn([slot.item for slot in batch]))
            if len(values) != len(batch):
                raise RuntimeError(f"batched call returned {len(values)} results for {len(batch)} items")
            for slot, value in zip(batch, values, strict=True):
                slot.value = value
        except BaseException as exc:  # every caller of the batch gets the failure, not just the leader
            for slot in batch:
                slot.error = exc
        finally:
            with self._cond:
                for slot in batch:
                    slot.done = True
                self.stats.items += len(batch)
                self.stats.batches += 1
                self.stats.largest = max(self.stats.largest, len(batch))
                if len(self.stats.sizes) < 10_000:
                    self.stats.sizes.append(len(batch))
                self._running -= 1
                self._cond.notify_all()


class BatchedEmbedder(Embedder):
    """An :class:`Embedder` whose calls from concurrent threads are encoded in shared batches.

    It wraps (does not load) a model: the cache is the wrapped embedder's.
    """

    def __init__(  # the wrapped embedder holds the model: nothing of Embedder to initialise
        self, embedder: Embedder, *, max_batch: int = 32, max_wait_s: float = 0.0, lanes: int = 1
    ) -> None:
        self.embedder = embedder
        self.batcher: MicroBatcher[str, Vector] = MicroBatcher(
            lambda texts: list(embedder.embed_many(texts)), max_batch=max_batch, max_wait_s=max_wait_s, lanes=lanes
        )

    @property
    def backbone(self) -> Any:
        return self.embedder.backbone

    @property
    def cache_size(self) -> int:
        return self.embedder.cache_size

    def embed_many(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        if not texts:
            return self.embedder.embed_many(texts)
        return np.stack(self.batcher.submit_many(list(texts)))

    def embed(self, text: str) -> Vector:
        return self.batcher(text)

    def similarity(self, a: str, b: str) -> float:
        first, second = self.embed_many([a, b])
        return float(np.dot(first, second))


class _BatchedScorer:
    def __init__(self, inner: Any, max_batch: int, max_wait_s: float) -> None:
        self.inner = inner
        self.version = inner.version
        self.batcher: MicroBatcher[str, float] = MicroBatcher(
            lambda requests: [float(x) for x in inner.score_many(requests)], max_batch=max_batch, max_wait_s=max_wait_s
        )

    def score(self, request: str) -> float:
        return self.batcher(request)

    def score_many(self, requests: Sequence[str]) -> list[float]:
        return self.batcher.submit_many(list(requests))


class _BatchedDistance:
    def __init__(self, inner: Any, max_batch: int, max_wait_s: float) -> None:
        self.inner = inner
        self.version = inner.version
        self.batcher: MicroBatcher[tuple[str, int], int | None] = MicroBatcher(
            lambda items: inner.predict_many([s for s, _ in items], [q for _, q in items]),
            max_batch=max_batch,
            max_wait_s=max_wait_s,
        )

    def predict(self, subtask: str, seq: int) -> int | None:
        return self.batcher((subtask, seq))

    def predict_many(self, subtasks: Sequence[str], seqs: Sequence[int]) -> list[int | None]:
        return self.batcher.submit_many(list(zip(subtasks, seqs, strict=True)))


def micro_batched(estimators: Estimators, *, max_batch: int = 32, max_wait_s: float = 0.0) -> Estimators:
    """``estimators`` with URC and DP calls batched across threads (when they can batch).

    Components without a batch entry point (stubs, the SD, a generative SP) are kept as they are;
    the embedding SP shares the process's embedder, which :func:`batched_embedder` batches.
    """
    urc, dp = estimators.urc, estimators.dp
    if hasattr(urc, "score_many"):
        urc = _BatchedScorer(urc, max_batch, max_wait_s)
    if hasattr(dp, "predict_many"):
        dp = _BatchedDistance(dp, max_batch, max_wait_s)
    return replace(estimators, urc=urc, dp=dp)
