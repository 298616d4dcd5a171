"""DP, the Distance Predictor: the S-L distance of an LLM subtask, from its text and sequence id.

Classification over 0..D plus one class for ∞ (the HERA paper, §2 Observation 4). A profiled
distance above D is labelled ∞: the SLE branch would have to hand the SLM more than D unchecked
steps, which the policy should not do. The sequence id enters as text ("step 3: ..."), which is
how an encoder sees position without a change to its architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.config import EstimatorSettings
from hera_router.estimators.encoder import EncoderHead, Progress, train_encoder_head
from hera_router.estimators.similarity import Embedder

VARIANT = "encoder-classification"


def distance_input(subtask: str, seq: int) -> str:
    return f"step {seq}: {subtask}"


def distance_class(distance: int | None, max_distance: int) -> int:
    """The class of a distance: itself up to D, else the ∞ class D + 1."""
    return max_distance + 1 if distance is None or distance > max_distance else distance


def class_distance(label: int, max_distance: int) -> int | None:
    return None if label > max_distance else label


def train_distance_predictor(
    subtasks: Sequence[str],
    seqs: Sequence[int],
    distances: Sequence[int | None],
    *,
    settings: EstimatorSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    labels = [distance_class(d, settings.max_distance) for d in distances]
    texts = [distance_input(s, q) for s, q in zip(subtasks, seqs, strict=True)]
    train_encoder_head(
        settings.encoder,
        texts,
        labels,
        num_labels=settings.max_distance + 2,
        settings=settings,
        out_dir=out_dir,
        progress=progress,
        balance_classes=True,
    )
    return {"variant": VARIANT, "backbone": settings.encoder, "max_distance": settings.max_distance}


class TrainedDistancePredictor:
    """:class:`~hera_router.routing.estimators.DistancePredictor` backed by an encoder head."""

    def __init__(self, head: EncoderHead, max_distance: int, version: str) -> None:
        self.head = head
        self.max_distance = max_distance
        self.version = version

    @classmethod
    def load(
        cls, folder: Path, meta: dict[str, Any], version: str, embedder: Embedder | None = None
    ) -> TrainedDistancePredictor:
        """``embedder``: the process's SBERT model, whose weights the head shares where it can."""
        max_distance = int(meta["max_distance"])
        shared = embedder.backbone if embedder is not None else None
        return cls(EncoderHead(meta["backbone"], folder, max_distance + 2, shared), max_distance, version)

    def predict_many(self, subtasks: Sequence[str], seqs: Sequence[int]) -> list[int | None]:
        logits = self.head.logits([distance_input(s, q) for s, q in zip(subtasks, seqs, strict=True)])
        return [class_distance(int(label), self.max_distance) for label in np.argmax(logits, axis=1)]

    def predict(self, subtask: str, seq: int) -> int | None:
        return self.predict_many([subtask], [seq])[0]
