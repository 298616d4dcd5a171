"""What keeps a router process small and fast: the embedding cache, one shared MiniLM
backbone under the encoder heads, the torch thread setting, registry paths that any worker finds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hera_router.estimators.artifacts import resolve_path, stored_path
from hera_router.estimators.distance import TrainedDistancePredictor
from hera_router.estimators.encoder import ADAPTER_DIR
from hera_router.estimators.request_scorer import TrainedRequestScorer
from hera_router.estimators.similarity import DEFAULT_ENCODER, Embedder, encoder_path, shared_embedder
from hera_router.estimators.threads import apply_torch_threads
from hera_router.routing.baselines import RandomPolicy
from hera_router.routing.hera import HeraPolicy

TEXTS = ["Find the mother of Hugo Wenss.", "Add 3 shells to 4 shells.", "Who directed Titanic?"]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder()


def test_a_cache_hit_returns_the_identical_read_only_vector(embedder: Embedder) -> None:
    cache = Embedder(cache_size=8)
    first = cache.embed(TEXTS[0])
    hits, misses = cache.hits, cache.misses
    again = cache.embed(TEXTS[0])
    assert (cache.hits, cache.misses) == (hits + 1, misses)
    assert np.array_equal(first, again)
    stored = cache._cache[TEXTS[0]]
    assert not stored.flags.writeable  # a caller writing into it would change later decisions
    with pytest.raises(ValueError, match="read-only"):
        stored[0] = 1.0


def test_the_cache_is_bounded_and_drops_the_least_recently_used_text() -> None:
    cache = Embedder(cache_size=2)
    cache.embed_many(TEXTS[:2])
    cache.embed(TEXTS[0])  # now the most recent
    cache.embed(TEXTS[2])
    assert cache.cache_size == 2
    assert list(cache._cache) == [TEXTS[0], TEXTS[2]]
    off = Embedder(cache_size=0)
    off.embed_many(TEXTS)
    assert off.cache_size == 0


def test_the_direct_forward_pass_gives_sentence_transformers_vectors_exactly(embedder: Embedder) -> None:
    # Decisions must not change: the path without encode()'s bookkeeping is the same computation.
    fresh = Embedder(cache_size=0)
    expected = fresh._model.encode(TEXTS, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
    assert np.array_equal(fresh.embed_many(TEXTS), expected)


def _adapter(folder: Path, num_labels: int, seed: int) -> Path:
    """A LoRA adapter with random (non-zero) weights on query/value, saved as a trained head is."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    base = AutoModelForSequenceClassification.from_pretrained(
        encoder_path(DEFAULT_ENCODER), num_labels=num_labels, local_files_only=True
    )
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, target_modules=["query", "value"], init_lora_weights=False
    )
    get_peft_model(base, config).save_pretrained(folder / ADAPTER_DIR)
    return folder


def test_encoder_heads_share_the_sbert_backbone_and_predict_the_same(tmp_path: Path, embedder: Embedder) -> None:
    dp_dir = _adapter(tmp_path / "dp", 6, seed=1)
    urc_dir = _adapter(tmp_path / "urc", 1, seed=2)
    meta: dict[str, Any] = {"backbone": DEFAULT_ENCODER, "max_distance": 4}
    dp = TrainedDistancePredictor.load(dp_dir, meta, "1", embedder)
    urc = TrainedRequestScorer.load(urc_dir, meta, "1", embedder)
    backbone = embedder.backbone
    for head in (dp.head, urc.head):
        bert = head.model.bert
        assert bert.embeddings is backbone.embeddings  # one module object, not an equal copy
        assert bert.encoder.layer[0].intermediate is backbone.encoder.layer[0].intermediate
        assert bert.encoder.layer[0].attention.self.key is backbone.encoder.layer[0].attention.self.key
        # LoRA changed the query and value projections: those stay the head's own.
        assert bert.encoder.layer[0].attention.self.query is not backbone.encoder.layer[0].attention.self.query
        total = sum(p.numel() for p in bert.parameters())
        assert head.shared_parameters > 0.9 * total
    assert dp.head.model.bert.embeddings is urc.head.model.bert.embeddings
    # Sharing changes no output: the same heads loaded with their own copies agree (to float
    # rounding: another test in the session may have changed torch's thread count, and with it the
    # order of the sums).
    alone = TrainedDistancePredictor.load(dp_dir, meta, "1")
    assert alone.head.shared_parameters == 0
    inputs = [f"step {i}: {text}" for i, text in enumerate(TEXTS)]
    np.testing.assert_allclose(dp.head.logits(inputs), alone.head.logits(inputs), rtol=0, atol=1e-5)
    # The shared SBERT model itself is untouched by the heads.
    np.testing.assert_allclose(embedder.embed_many(TEXTS), Embedder(cache_size=0).embed_many(TEXTS), rtol=0, atol=1e-5)


def test_torch_threads_are_set_on_purpose() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        assert apply_torch_threads(1) == 1
        assert torch.get_num_threads() == 1
        assert apply_torch_threads(0) == 1  # 0 leaves the count as it is
    finally:
        torch.set_num_threads(before)


def test_only_hera_asks_for_estimators() -> None:
    from hera_router.config import RoutingSettings

    assert HeraPolicy(RoutingSettings()).needs_estimators
    assert not RandomPolicy(RoutingSettings()).needs_estimators


def test_registry_paths_are_stored_relative_to_the_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = data / "artifacts" / "estimators" / "dp" / "v3"
    folder.mkdir(parents=True)
    assert stored_path(folder, data) == "artifacts/estimators/dp/v3"
    elsewhere = tmp_path / "models" / "dp" / "v3"
    assert stored_path(elsewhere, data) == str(elsewhere.resolve())  # outside the data dir: absolute
    artifacts = data / "artifacts"
    assert resolve_path("artifacts/estimators/dp/v3", data, artifacts) == data / "artifacts/estimators/dp/v3"
    assert resolve_path(str(folder), data, artifacts) == folder


def test_legacy_paths_relative_to_the_bootstrap_directory_still_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "site" / ".hera"
    folder = data / "artifacts" / "estimators" / "urc" / "v1"
    folder.mkdir(parents=True)
    (folder / "estimator.json").write_text(json.dumps({"variant": "x"}), encoding="utf-8")
    legacy = ".hera/artifacts/estimators/urc/v1"  # what a bootstrap run in tmp/site stored
    monkeypatch.chdir(tmp_path / "site")
    assert resolve_path(legacy, data, data / "artifacts").resolve() == folder.resolve()  # via the cwd
    monkeypatch.chdir(tmp_path)
    assert resolve_path(legacy, data, data / "artifacts") == folder  # via the artefact layout
