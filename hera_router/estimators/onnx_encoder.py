"""The SBERT forward pass on ONNX Runtime (``HERA_ESTIMATORS__ENCODER_RUNTIME=onnx``, the default).

A router's most frequent model call is one MiniLM pass on a new subtask (its decision and its
verify hop share it through the embedding cache). At batch 1 on one CPU thread, ONNX Runtime runs
the same graph in about half torch's time (benchmarks/results/hera_decisions.md), with the same
vectors to float rounding: cosine to torch's vector ≥ 0.99999 (tests/unit/estimators/
test_onnx_encoder.py), so every similarity test and every estimator input is unchanged within
that tolerance.

The graph is exported once from the very weights torch loaded (the packaged MiniLM: transformer,
mean pooling over the attention mask, L2 normalisation, as sentence-transformers composes them)
into ``<artifacts>/onnx/``, keyed by a hash of the checkpoint and the library versions, under a
file lock so that the children of a prefork router export it once between them; later processes
load the file (~0.3 s). Tokenisation stays sentence-transformers' (same ids, same truncation).
Anything that goes wrong (no ``onnxruntime``, an export error) leaves the embedder on torch with
one warning: the runtime is an optimisation, never a new way to fail.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _fingerprint(model_dir: Path) -> str:
    import onnxruntime
    import torch
    import transformers

    digest = hashlib.sha256()
    for name in sorted(p.name for p in model_dir.iterdir() if p.suffix in {".json", ".safetensors", ".bin", ".txt"}):
        stat = (model_dir / name).stat()
        digest.update(f"{name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    digest.update(f"{torch.__version__}|{transformers.__version__}|{onnxruntime.__version__}".encode())
    return digest.hexdigest()[:16]


def export(model: Any, target: Path) -> None:
    """Write ``model`` (a SentenceTransformer: BERT, mean pooling, normalise) as ONNX to ``target``."""
    import torch

    backbone = model[0].auto_model

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = backbone

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.backbone(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    sample = model.preprocess(["an example subtask", "a second, somewhat longer example subtask"])
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    # The tracer warns about Python control flow it folds into constants (shapes here are dynamic
    # axes, and the equality test covers one-token to truncated inputs): not the user's concern.
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Pooled().eval(),
            tuple(sample[name] for name in INPUTS),
            str(partial),
            input_names=list(INPUTS),
            output_names=["embedding"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in INPUTS},
            opset_version=17,
            dynamo=False,
        )
    partial.replace(target)


class OnnxEncoder:
    """An ONNX Runtime session over the exported graph; ``encode(features)`` → normalised rows."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(threads, 0)  # 0: ONNX Runtime's default (every core)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = path
        self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(self, features: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
        feeds = {name: features[name].numpy().astype(np.int64, copy=False) for name in INPUTS}
        rows: np.ndarray[Any, np.dtype[np.float32]] = self._session.run(None, feeds)[0].astype(np.float32, copy=False)
        return rows


def load_or_export(model: Any, model_dir: Path, folder: Path, threads: int) -> OnnxEncoder | None:
    """The ONNX encoder for ``model`` (exported into ``folder`` first if needed), or None with a
    warning if ONNX Runtime cannot serve it here."""
    try:
        from filelock import FileLock

        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"minilm-{_fingerprint(model_dir)}.onnx"
        with FileLock(str(folder / ".export.lock"), timeout=600):
            if not target.is_file():
                log.info("estimators: exporting the SBERT encoder to ONNX (%s), once per data dir", target)
                export(model, target)
        return OnnxEncoder(target, threads)
    except Exception as exc:  # the runtime is an optimisation: fall back, say it once
        reason = f"{type(exc).__name__}: {exc}"
        log.warning("estimators: ONNX Runtime unavailable for the SBERT encoder (%s); using torch", reason)
        return None
