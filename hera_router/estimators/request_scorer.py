"""URC, the User Request Classifier: predicted similarity of a request's All-SLM and All-LLM answers.

Two variants; the policy compares the score with τ_req either way.

* ``embedding-logistic`` (the default): a logistic head on the frozen SBERT embedding of the
  request plus a few shape features (words, numbers, clauses, the largest number's magnitude),
  regularised by cross-validation grouped by request. It predicts P(the All-SLM answer matches the
  All-LLM one).
* ``encoder-regression`` (the paper's shape): an encoder + LoRA regression head on the request text
  (paper: ModernBERT + LoRA; here the ``encoder`` backbone, MiniLM by default).

Why the default changed. With the 100-120 requests ``bootstrap`` used to profile, the LoRA head
never left its starting point: early stopping held out 20 of them, no epoch beat the untrained head
(initialised at the training mean), so the mean was kept and every request scored the same (0.652
and 0.690 on two unseen simulated worlds). Two causes at the root: far too few examples for
fine-tuning a 22M-parameter encoder on a noisy label, and a label that depends on a whole chain of
stochastic steps, so most of the signal is in coarse request features (how many steps, how large
the numbers), which a frozen embedding plus a linear head captures from a few hundred examples.
``bootstrap`` now also profiles many more requests for URC alone (its labels need only the two
pure chains, ``HERA_ESTIMATORS__URC_REQUESTS``), and a URC that still does not beat its baseline on
held-out requests is marked untrusted, which turns the URC stage off (``training/calibration.py``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.config import EstimatorSettings
from hera_router.estimators.encoder import EncoderHead, Progress, train_encoder_head
from hera_router.estimators.similarity import DEFAULT_ENCODER, Embedder

VARIANT = "encoder-regression"
LOGISTIC_VARIANT = "embedding-logistic"
HEAD_FILE = "urc_head.json"
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def shape_features(requests: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Request-shape features that say how long and how hard a task is, in any wording."""
    rows = []
    for text in requests:
        numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(text)]
        rows.append(
            [
                math.log1p(len(text.split())),
                math.log1p(len(numbers)),
                math.log10(max(max(numbers, default=1.0), 1.0)) / 4,
                math.log1p(text.count(";") + text.count(",") + text.count(" of ")),
            ]
        )
    return np.asarray(rows, dtype=np.float64)


def train_logistic_scorer(
    requests: Sequence[str], targets: Sequence[float], embedder: Embedder, *, threshold: float, out_dir: Path
) -> dict[str, Any]:
    """Fit the ``embedding-logistic`` URC: label = the target similarity is above ``threshold``."""
    from hera_router.estimators.divergence import fit_head

    features = np.hstack([embedder.embed_many(list(requests)).astype(np.float64), shape_features(requests)])
    head, info = fit_head(features, [t > threshold for t in targets], list(requests))
    (out_dir / HEAD_FILE).write_text(json.dumps(head.to_json()), encoding="utf-8")
    return {"variant": LOGISTIC_VARIANT, "backbone": DEFAULT_ENCODER, "fit": info, "label_threshold": threshold}


class LogisticRequestScorer:
    """The ``embedding-logistic`` URC (see the module docstring)."""

    def __init__(self, head: Any, embedder: Embedder, version: str) -> None:
        self.head = head
        self.embedder = embedder
        self.version = version

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any], version: str, embedder: Embedder) -> LogisticRequestScorer:
        from hera_router.estimators.divergence import LogisticHead

        return cls(LogisticHead.from_json(json.loads((folder / HEAD_FILE).read_text("utf-8"))), embedder, version)

    def score_many(self, requests: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        features = np.hstack([self.embedder.embed_many(list(requests)).astype(np.float64), shape_features(requests)])
        return self.head.probability(features).astype(np.float32)  # type: ignore[no-any-return]

    def score(self, request: str) -> float:
        return float(self.score_many([request])[0])


def train_request_scorer(
    requests: Sequence[str],
    targets: Sequence[float],
    *,
    settings: EstimatorSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train into ``out_dir``; returns the metadata the loader needs."""
    train_encoder_head(
        settings.encoder, requests, targets, num_labels=1, settings=settings, out_dir=out_dir, progress=progress
    )
    return {"variant": VARIANT, "backbone": settings.encoder}


class TrainedRequestScorer:
    """:class:`~hera_router.routing.estimators.RequestScorer` backed by an encoder head."""

    def __init__(self, head: EncoderHead, version: str) -> None:
        self.head = head
        self.version = version

    @classmethod
    def load(
        cls, folder: Path, meta: dict[str, Any], version: str, embedder: Embedder | None = None
    ) -> TrainedRequestScorer:
        """``embedder``: the process's SBERT model, whose weights the head shares where it can."""
        shared = embedder.backbone if embedder is not None else None
        return cls(EncoderHead(meta["backbone"], folder, 1, shared), version)

    def score_many(self, requests: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        # Similarities live in [0, 1]; a regression head can overshoot at the edges.
        return np.clip(self.head.logits(requests)[:, 0], 0.0, 1.0)

    def score(self, request: str) -> float:
        return float(self.score_many([request])[0])
