"""Micro-batching: concurrent calls coalesce while the model is busy, each caller gets its own result."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from hera_router.estimators.batching import BatchedEmbedder, MicroBatcher, micro_batched
from hera_router.routing.estimators import Estimators


class GatedModel:
    """Doubles its inputs; the first batch blocks until released, so that others queue behind it."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        return [2 * item for item in items]


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_a_lone_call_runs_at_once_as_a_batch_of_one() -> None:
    model = GatedModel()
    model.release.set()
    batcher = MicroBatcher(model)
    assert batcher(21) == 42
    assert model.batches == [[21]]
    assert batcher.stats.largest == 1


def test_calls_arriving_while_the_model_is_busy_share_the_next_forward_pass() -> None:
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=32)
    results: dict[int, int] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, batcher(i))) for i in range(6)]
    threads[0].start()
    assert model.entered.wait(10)
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: len(batcher._pending) == 5)
    model.release.set()
    for thread in threads:
        thread.join(10)
    assert results == {i: 2 * i for i in range(6)}
    assert model.batches[0] == [0]
    assert sorted(model.batches[1]) == [1, 2, 3, 4, 5]
    assert batcher.stats.batches == 2
    assert batcher.stats.largest == 5


def test_max_batch_caps_a_forward_pass_and_submit_many_keeps_order() -> None:
    model = GatedModel()
    model.release.set()
    batcher = MicroBatcher(model, max_batch=3)
    assert batcher.submit_many(list(range(8))) == [2 * i for i in range(8)]
    assert [len(batch) for batch in model.batches] == [3, 3, 2]


def test_a_failing_batch_fails_every_caller_in_it_and_the_batcher_recovers() -> None:
    calls: list[list[str]] = []

    def model(items: Sequence[str]) -> list[str]:
        calls.append(list(items))
        if "bad" in items:
            raise ValueError("cannot encode")
        return [item.upper() for item in items]

    batcher = MicroBatcher(model)
    with pytest.raises(ValueError, match="cannot encode"):
        batcher.submit_many(["ok", "bad"])
    assert batcher("again") == "AGAIN"


def test_a_wrong_number_of_results_is_an_error_not_a_silent_misalignment() -> None:
    batcher = MicroBatcher(lambda items: [1])
    with pytest.raises(RuntimeError, match="2 items"):
        batcher.submit_many([1, 2])


def test_max_wait_lets_the_first_call_wait_for_company() -> None:
    seen: list[int] = []

    def model(items: Sequence[int]) -> list[int]:
        seen.append(len(items))
        return list(items)

    batcher = MicroBatcher(model, max_batch=4, max_wait_s=5.0)
    threads = [threading.Thread(target=batcher, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    # The leader waits up to 5 s but leaves as soon as the batch is full.
    assert seen == [4]


class FakeEmbedder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def embed_many(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        self.calls.append(list(texts))
        return np.array([[float(len(t)), 1.0] for t in texts], dtype=np.float32).reshape(len(texts), 2)


def test_batched_embedder_returns_the_wrapped_embeddings_row_for_row() -> None:
    inner = FakeEmbedder()
    embedder = BatchedEmbedder(inner)  # type: ignore[arg-type]
    rows = embedder.embed_many(["a", "abc"])
    assert rows.tolist() == [[1.0, 1.0], [3.0, 1.0]]
    assert embedder.embed("ab").tolist() == [2.0, 1.0]
    assert embedder.similarity("a", "ab") == pytest.approx(3.0)


class Scorer:
    version = "3"

    def score_many(self, requests: Sequence[str]) -> list[float]:
        return [len(r) / 10 for r in requests]

    def score(self, request: str) -> float:
        raise AssertionError("the batched wrapper must call score_many")


class Distance:
    version = "4"

    def predict_many(self, subtasks: Sequence[str], seqs: Sequence[int]) -> list[int | None]:
        return [None if q > 3 else q for q in seqs]

    def predict(self, subtask: str, seq: int) -> int | None:
        raise AssertionError("the batched wrapper must call predict_many")


class StubDistance:
    version = "s"

    def predict(self, subtask: str, seq: int) -> int | None:
        return 1


def test_micro_batched_wraps_what_can_batch_and_keeps_versions() -> None:
    other: Any = object()
    bundle = Estimators(urc=Scorer(), sp_slm=other, sp_llm=other, dp=Distance(), sd=other, versions={"urc": "3"})
    batched = micro_batched(bundle)
    assert batched.urc.score("abcde") == pytest.approx(0.5)
    assert batched.dp.predict("x", 2) == 2
    assert batched.dp.predict("x", 5) is None
    assert batched.urc.version == "3"
    assert batched.versions == {"urc": "3"}
    assert batched.sp_slm is other
    stub = micro_batched(Estimators(urc=Scorer(), sp_slm=other, sp_llm=other, dp=StubDistance(), sd=other))
    assert isinstance(stub.dp, StubDistance)


def test_with_two_lanes_a_second_batch_runs_while_the_first_is_busy() -> None:
    # One torch thread per pass: a second core must not sit idle behind a busy batch.
    model = GatedModel()
    batcher = MicroBatcher(model, max_batch=32, lanes=2)
    results: dict[int, int] = {}
    first = threading.Thread(target=lambda: results.__setitem__(0, batcher(0)))
    first.start()
    assert model.entered.wait(10)
    assert batcher(7) == 14  # ran in the second lane while the first batch is still blocked
    assert 0 not in results
    model.release.set()
    first.join(10)
    assert results == {0: 0}
    assert model.batches == [[0], [7]]
    with pytest.raises(ValueError, match="lanes"):
        MicroBatcher(model, lanes=0)
