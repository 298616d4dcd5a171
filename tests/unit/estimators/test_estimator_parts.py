"""Estimator building blocks without a database: similarity cache, DP classes, SP rolling, SD parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hera_router.backends.base import Generation, GenerationParams, Message
from hera_router.estimators.artifacts import new_staging_dir, publish, read_meta, version_dir, write_meta
from hera_router.estimators.decomposer import PromptedDecomposer
from hera_router.estimators.distance import class_distance, distance_class
from hera_router.estimators.predictor import EmbeddingSubtaskPredictor, mlp
from hera_router.estimators.similarity import EMBEDDING_DIM, Embedder, shared_embedder
from hera_router.routing.estimators import ChainState, cosine
from hera_router.simulator.backend import SimBackend


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder()


def test_similarity_is_sbert_cosine_with_a_bounded_cache(embedder: Embedder) -> None:
    small = Embedder(cache_size=2)
    a, b = "Find the mother of Hugo Wenss.", "Determine the mother of Hugo Wenss."
    assert small.similarity(a, b) > 0.7
    assert small.similarity(a, "Add 3 shells to 4 shells.") < 0.7
    vectors = small.embed_many([a, b, "a third text"])
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert len(small._cache) == 2  # least recently used texts are dropped
    assert shared_embedder() is embedder  # one model per process


def test_distance_classes_round_trip_with_infinity() -> None:
    assert [distance_class(d, 4) for d in (0, 3, 4, 5, None)] == [0, 3, 4, 5, 5]
    assert [class_distance(c, 4) for c in (0, 4, 5)] == [0, 4, None]


def test_an_untrained_embedding_predictor_copies_the_current_subtask(embedder: Embedder) -> None:
    predictor = EmbeddingSubtaskPredictor(mlp(2 * EMBEDDING_DIM + 16, 32), embedder, 15, "0")
    state = ChainState("Who directed Titanic?", (), "Identify the director of Titanic.", 1)
    rolled = predictor.roll(state, 4)
    assert len(rolled) == 4
    current = embedder.embed(state.current)
    assert all(cosine(vector, current) > 0.999 for vector in rolled)
    assert predictor.roll(state, 0) == []


def test_prompted_decomposer_asks_the_edge_model() -> None:
    sd = PromptedDecomposer(SimBackend("slm", "sim-slm"), "1")
    parts = sd.decompose(
        "Who is the birthplace of the mother of Hugo Wenss?", "Find the mother of Hugo Wenss.", "Find the birthplace."
    )
    assert len(parts) >= 1
    assert all(part.strip() for part in parts)


class SilentBackend:
    name = "silent"

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return Generation(
            text="",
            prompt_tokens=1,
            completion_tokens=0,
            latency_s=0.0,
            finish_reason="stop",
            model="silent",
            backend="silent",
        )


def test_an_empty_decomposition_is_the_subtask_itself() -> None:
    assert PromptedDecomposer(SilentBackend(), "1").decompose("r", "the subtask", None) == ["the subtask"]


def test_artifacts_publish_replaces_an_orphan(tmp_path: Path) -> None:
    orphan = version_dir(tmp_path, "dp", 1)
    orphan.mkdir(parents=True)
    (orphan / "stale").write_text("x")
    staging = new_staging_dir(tmp_path, "dp")
    write_meta(staging, {"variant": "x"})
    final = publish(staging, tmp_path, "dp", 1)
    assert final == orphan
    assert read_meta(final) == {"variant": "x"}
    assert not (final / "stale").exists()
    with pytest.raises(FileNotFoundError, match=r"estimator\.json"):
        read_meta(tmp_path)
