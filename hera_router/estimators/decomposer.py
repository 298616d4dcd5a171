"""SD, the Subtask Decomposer: split a subtask into smaller steps aimed at the LLM's next subtask.

- ``prompted`` (the default): ask the edge model with the decomposition prompt of
  ``agent/format.py``; no training, so it is as good as the SLM is at planning.
- ``trained`` (paper-faithful): a causal LM + LoRA fine-tuned on the SLM decompositions recorded
  during profiling (those whose parts the evaluation can check), prompted the same way.

A decomposition that comes back empty is the subtask itself: the SD branch then degrades to an
SSE test of the original step instead of failing the decision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hera_router.agent.format import parse_decomposition, render_decompose_messages, render_decomposition
from hera_router.backends.base import GenerationParams, ModelBackend
from hera_router.config import EstimatorSettings
from hera_router.estimators.causal import CausalGenerator, Progress, generator_checkpoint, train_causal_lora

PROMPTED_VARIANT = "prompted"
TRAINED_VARIANT = "trained"
MAX_PARTS = 4


@dataclass(frozen=True, slots=True)
class DecompositionExample:
    request: str
    subtask: str
    expected_next: str | None
    parts: tuple[str, ...]
    history: tuple[tuple[str, str], ...] = ()
    """The (subtask, result) pairs before ``subtask`` in its profiled chain (for evaluation)."""
    seq: int = 0


def decompose_prompt(request: str, subtask: str, expected_next: str | None) -> str:
    """The decomposition prompt as one text (system rules + the user message)."""
    system, user = render_decompose_messages(subtask, request, expected_next, MAX_PARTS)
    return f"{system.content}\n\n{user.content}"


def _parts(text: str, subtask: str) -> list[str]:
    return parse_decomposition(text)[:MAX_PARTS] or [subtask]


class PromptedDecomposer:
    """:class:`~hera_router.routing.estimators.Decomposer` that asks a model backend (the edge SLM)."""

    def __init__(self, backend: ModelBackend, version: str, max_new_tokens: int = 128) -> None:
        self.backend = backend
        self.version = version
        self.max_new_tokens = max_new_tokens

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        messages = render_decompose_messages(subtask, request, expected_next, MAX_PARTS)
        generation = self.backend.generate(messages, GenerationParams(max_new_tokens=self.max_new_tokens))
        return _parts(generation.text, subtask)


def train_decomposer(
    examples: Sequence[DecompositionExample],
    *,
    settings: EstimatorSettings,
    artifacts: Path,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    checkpoint = generator_checkpoint(settings.generator, artifacts)
    pairs = [
        (decompose_prompt(e.request, e.subtask, e.expected_next), render_decomposition(list(e.parts))) for e in examples
    ]
    train_causal_lora(checkpoint, pairs, settings=settings, out_dir=out_dir, progress=progress)
    # Two to four short parts: 64 tokens hold them, and each generated token costs ~50 ms on CPU.
    return {"variant": TRAINED_VARIANT, "backbone": settings.generator, "max_new_tokens": 64}


class TrainedDecomposer:
    """:class:`~hera_router.routing.estimators.Decomposer` backed by a fine-tuned causal LM."""

    def __init__(self, generator: CausalGenerator, version: str) -> None:
        self.generator = generator
        self.version = version

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any], version: str, artifacts: Path) -> TrainedDecomposer:
        checkpoint = generator_checkpoint(meta["backbone"], artifacts)
        return cls(CausalGenerator(checkpoint, folder, int(meta["max_new_tokens"])), version)

    def decompose_many(self, items: Sequence[tuple[str, str, str | None]]) -> list[list[str]]:
        texts = self.generator.generate([decompose_prompt(r, s, e) for r, s, e in items])
        return [_parts(text, subtask) for text, (_, subtask, _) in zip(texts, items, strict=True)]

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        return self.decompose_many([(request, subtask, expected_next)])[0]
