"""What the HERA policy needs from the learned estimators (the HERA paper, §3.2), as protocols.

The policy is pure: it receives an :class:`Estimators` bundle and never loads a model itself.
Implementations live in ``hera_router.estimators`` (loaded per worker process from the active
versions in the registry); tests pass small stubs.

The common currency of the similarity tests (SSE, SLE, CD, and the SSE check of SD parts) is an
embedding: a predictor of the next subtask returns the SBERT embedding of what it predicts, so the
``generative`` variant (generate text, then embed it) and the ``embedding`` variant (predict the
embedding directly) are interchangeable behind one interface, and rolling forward k steps costs k
predictions either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
"""An L2-normalised sentence embedding (all-MiniLM-L6-v2: 384 floats)."""


@dataclass(frozen=True, slots=True)
class ChainState:
    """What a predictor sees: the request, the (subtask, result) history and the current subtask."""

    request: str
    history: Sequence[tuple[str, str]]
    current: str
    seq: int


class RequestScorer(Protocol):
    """URC: predicted similarity of the All-SLM and All-LLM final answers of a request."""

    version: str

    def score(self, request: str) -> float: ...


class NextSubtaskPredictor(Protocol):
    """SP_SLM or SP_LLM: the subtasks the model would produce next, as embeddings."""

    version: str

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        """Embeddings of the next ``steps`` subtasks, each predicted from the one before."""
        ...


class DistancePredictor(Protocol):
    """DP: the S-L distance of the current subtask (extra SLM steps to catch up); None = ∞."""

    version: str

    def predict(self, subtask: str, seq: int) -> int | None: ...


class Decomposer(Protocol):
    """SD: split a subtask into smaller steps, aiming at the LLM's predicted next subtask."""

    version: str

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]: ...


class DivergenceScorer(Protocol):
    """DV: P(the SLM's and the LLM's continuations of a step agree), before and after the SLM ran it."""

    version: str
    can_verify: bool

    def agreement_vec(self, current: Vector, seq: int, sp_cosine: float) -> float:
        """Before execution, from the step's embedding, its sequence id and cos(SP_SLM, SP_LLM)."""
        ...

    def accept_vec(self, current: Vector, seq: int, sp_cosine: float, confidence: float | None) -> float:
        """After the SLM ran the step, adding its mean token logprob."""
        ...


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity of two embeddings (normalised here, so callers need not guarantee it)."""
    denominator = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / denominator) if denominator else 0.0


@dataclass(frozen=True)
class Estimators:
    """The estimator handles of one router process, with the versions they were loaded from."""

    urc: RequestScorer
    sp_slm: NextSubtaskPredictor
    sp_llm: NextSubtaskPredictor
    dp: DistancePredictor
    sd: Decomposer
    versions: Mapping[str, str] = field(default_factory=dict)
    divergence: DivergenceScorer | None = None
    """Optional: without it the similarity tests use the SP cosine and there is no verify stage."""
    embed: Callable[[str], Vector] | None = None
    """The process's SBERT encoder (what the divergence estimator reads a step with)."""
    calibration: Mapping[str, Any] | None = None
    """Thresholds fitted on this deployment's profiled traffic for exactly these versions
    (``training/calibration.py``); None: the settings' values (the paper's constants)."""
