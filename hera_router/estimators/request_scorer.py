"""URC, the User Request Classifier: predicted similarity of a request's All-SLM and All-LLM answers.

An encoder + LoRA regression head on the request text (paper: ModernBERT + LoRA; here the
``encoder`` backbone, MiniLM by default). The policy compares the score with τ_req.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.config import EstimatorSettings
from hera_router.estimators.encoder import EncoderHead, Progress, train_encoder_head

VARIANT = "encoder-regression"


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
    def load(cls, folder: Path, meta: dict[str, Any], version: str) -> TrainedRequestScorer:
        return cls(EncoderHead(meta["backbone"], folder, num_labels=1), version)

    def score_many(self, requests: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        # Similarities live in [0, 1]; a regression head can overshoot at the edges.
        return np.clip(self.head.logits(requests)[:, 0], 0.0, 1.0)

    def score(self, request: str) -> float:
        return float(self.score_many([request])[0])
