"""The SBERT pass on ONNX Runtime gives torch's vectors (to float rounding) and the same tests.

Each embedder here has its own cache off, so every vector is a fresh forward pass.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from hera_router.estimators import onnx_encoder
from hera_router.estimators.similarity import Embedder
from hera_router.simulator.generate import generate


@pytest.fixture(scope="module")
def texts() -> list[str]:
    tasks = generate("mixed", 40, 5)
    return [t.request for t in tasks] + ["", "a", "x " * 400]  # empty, one token, truncated at max length


@pytest.fixture(scope="module")
def embedders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Embedder, Embedder, Path]:
    folder = tmp_path_factory.mktemp("onnx")
    torch_embedder, onnx_embedder = Embedder(cache_size=0), Embedder(cache_size=0)
    assert onnx_embedder.use_onnx(folder, threads=1) is True
    assert (torch_embedder.runtime, onnx_embedder.runtime) == ("torch", "onnx")
    return torch_embedder, onnx_embedder, folder


def test_onnx_vectors_equal_torch_to_float_rounding(
    embedders: tuple[Embedder, Embedder, Path], texts: list[str]
) -> None:
    torch_embedder, onnx_embedder, _ = embedders
    expected, got = torch_embedder.embed_many(texts), onnx_embedder.embed_many(texts)
    assert got.shape == expected.shape == (len(texts), 384)
    assert got.dtype == np.float32
    cosines = (expected * got).sum(axis=1)
    assert cosines.min() >= 0.99999
    assert np.abs(expected - got).max() < 1e-3
    # One at a time (batch 1, the router's case) and in a batch give the same rows.
    singles = np.stack([onnx_embedder.embed(text) for text in texts[:5]])
    assert np.abs(singles - got[:5]).max() < 1e-5


def test_similarity_tests_decide_the_same(embedders: tuple[Embedder, Embedder, Path], texts: list[str]) -> None:
    torch_embedder, onnx_embedder, _ = embedders
    pairs = [(a, b) for a in texts[:12] for b in texts[:12] if a < b]
    torch_scores = np.array([torch_embedder.similarity(a, b) for a, b in pairs])
    onnx_scores = np.array([onnx_embedder.similarity(a, b) for a, b in pairs])
    assert np.abs(torch_scores - onnx_scores).max() < 1e-4
    far_from_threshold = np.abs(torch_scores - 0.7) > 1e-4
    assert ((torch_scores >= 0.7) == (onnx_scores >= 0.7))[far_from_threshold].all()


def test_a_second_process_loads_the_exported_graph(embedders: tuple[Embedder, Embedder, Path]) -> None:
    _, _, folder = embedders
    exported = sorted(folder.glob("minilm-*.onnx"))
    assert len(exported) == 1
    stamp = exported[0].stat().st_mtime_ns
    again = Embedder(cache_size=0)
    assert again.use_onnx(folder, threads=1) is True
    assert exported[0].stat().st_mtime_ns == stamp  # loaded, not exported again


def test_an_export_failure_leaves_torch_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(model: object, target: Path) -> None:
        raise RuntimeError("no exporter here")

    monkeypatch.setattr(onnx_encoder, "export", broken)
    embedder = Embedder(cache_size=0)
    with caplog.at_level(logging.WARNING, logger=onnx_encoder.__name__):
        assert embedder.use_onnx(tmp_path, threads=1) is False
    assert embedder.runtime == "torch"
    assert [r.getMessage() for r in caplog.records if "no exporter here" in r.getMessage()]
    assert embedder.embed("still works").shape == (384,)


def test_bootstrap_prepares_the_routers_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bootstrap`` ends by exporting the graph where the routers look, so no router exports it."""
    from hera_router.config import load_settings
    from hera_router.estimators import similarity
    from hera_router.estimators.similarity import onnx_folder, prepare_router_encoder

    monkeypatch.delenv("HERA_ESTIMATORS__ONNX_DIR", raising=False)
    monkeypatch.setattr(similarity, "_shared", None)
    said: list[str] = []
    settings = load_settings(data_dir=tmp_path)
    assert onnx_folder(settings) == settings.artifacts / "onnx"
    assert prepare_router_encoder(settings, said.append) is True
    assert len(list((settings.artifacts / "onnx").glob("minilm-*.onnx"))) == 1
    assert "ONNX graph in" in said[0]

    off = load_settings(data_dir=tmp_path / "torch", estimators={"encoder_runtime": "torch"})
    assert prepare_router_encoder(off) is False
    assert not (off.artifacts / "onnx").exists()
