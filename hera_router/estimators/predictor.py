"""SP_SLM / SP_LLM, the Subtask Predictors: what a model's next subtasks will be, as embeddings.

Two variants behind :class:`~hera_router.routing.estimators.NextSubtaskPredictor`:

- ``embedding`` (the CPU default): a small MLP maps the SBERT embedding of the current subtask,
  the request's embedding and the position to the embedding of the next subtask. Rolling k steps
  feeds each prediction back in as the next "current" subtask, so SSE, SLE and CD cost k matrix
  products, well under a millisecond each. The prediction is a residual on the current
  embedding: an untrained head starts as "copy the current subtask", the trivial baseline.
- ``generative`` (paper-faithful): a causal LM + LoRA writes the next subtask's text, which is
  then embedded; rolling feeds the generated text back in. About a second per step on two CPU
  cores with SmolLM2-135M, milliseconds on a GPU with Qwen3-0.6B.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.config import EstimatorSettings
from hera_router.estimators.causal import CausalGenerator, Progress, generator_checkpoint, train_causal_lora
from hera_router.estimators.similarity import DEFAULT_ENCODER, EMBEDDING_DIM, Embedder
from hera_router.routing.estimators import ChainState, Vector

EMBEDDING_VARIANT = "embedding"
GENERATIVE_VARIANT = "generative"
HEAD_FILE = "head.pt"
EMBEDDING_BATCH = 128


@dataclass(frozen=True, slots=True)
class SubtaskPair:
    """One training example: where a chain stood, and the subtask the model wrote next."""

    state: ChainState
    next_subtask: str


def _position_features(seq: int, max_position: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    features = np.zeros(max_position + 1, dtype=np.float32)
    features[min(seq, max_position)] = 1.0
    return features


def _normalise(rows: np.ndarray[Any, np.dtype[np.float32]]) -> np.ndarray[Any, np.dtype[np.float32]]:
    norms = np.linalg.norm(rows, axis=-1, keepdims=True)
    normalised: np.ndarray[Any, np.dtype[np.float32]] = (rows / np.maximum(norms, 1e-8)).astype(np.float32)
    return normalised


def mlp(input_dim: int, hidden: int) -> Any:
    import torch

    net: Any = torch.nn.Sequential(
        torch.nn.Linear(input_dim, hidden),
        torch.nn.GELU(),
        torch.nn.Dropout(0.1),
        torch.nn.Linear(hidden, EMBEDDING_DIM),
    )
    # A zero last layer makes the untrained head exactly "copy the current subtask" (the residual
    # is zero), so training starts from the trivial baseline rather than from noise.
    torch.nn.init.zeros_(net[-1].weight)
    torch.nn.init.zeros_(net[-1].bias)
    return net


def _features(
    current: np.ndarray[Any, np.dtype[np.float32]],
    request: np.ndarray[Any, np.dtype[np.float32]],
    seqs: Sequence[int],
    max_position: int,
) -> np.ndarray[Any, np.dtype[np.float32]]:
    positions = np.stack([_position_features(seq, max_position) for seq in seqs])
    return np.concatenate([current, request, positions], axis=1).astype(np.float32)


def train_embedding_predictor(
    pairs: Sequence[SubtaskPair],
    embedder: Embedder,
    *,
    settings: EstimatorSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Fit the residual MLP with a cosine loss (full batch: a few thousand rows fit in memory).

    A tenth of the requests is held out inside the training split and training keeps the weights
    with the best held-out loss: profiles are small, and the MLP memorises them within a few
    hundred epochs.
    """
    import copy

    import torch

    torch.manual_seed(settings.train_seed)
    max_position = settings.max_depth
    current = embedder.embed_many([p.state.current for p in pairs])
    request = embedder.embed_many([p.state.request for p in pairs])
    target = torch.from_numpy(embedder.embed_many([p.next_subtask for p in pairs]))
    inputs = torch.from_numpy(_features(current, request, [p.state.seq for p in pairs], max_position))
    base = torch.from_numpy(current)
    requests = sorted({p.state.request for p in pairs})
    held = set(requests[::10]) if len(requests) >= 5 else set()
    mask = torch.tensor([p.state.request in held for p in pairs])
    fit_rows, check_rows = ~mask, mask if bool(mask.any()) else ~mask
    net = mlp(inputs.shape[1], settings.embedding_hidden)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.embedding_learning_rate, weight_decay=1e-2)

    def loss_on(rows: Any) -> Any:
        predicted = torch.nn.functional.normalize(base[rows] + net(inputs[rows]), dim=1)
        return (1.0 - (predicted * target[rows]).sum(dim=1)).mean()

    best_loss, best_state = float("inf"), copy.deepcopy(net.state_dict())
    fit_index = torch.nonzero(fit_rows).flatten()
    generator = torch.Generator().manual_seed(settings.train_seed)
    for epoch in range(settings.embedding_epochs):
        net.train()
        order = fit_index[torch.randperm(len(fit_index), generator=generator)]
        for start in range(0, len(order), EMBEDDING_BATCH):
            loss = loss_on(order[start : start + EMBEDDING_BATCH])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        net.eval()
        with torch.no_grad():
            held_loss = float(loss_on(check_rows))
        if held_loss < best_loss:
            best_loss, best_state = held_loss, copy.deepcopy(net.state_dict())
        if progress is not None and (epoch + 1) % 10 == 0:
            progress(f"epoch {epoch + 1}/{settings.embedding_epochs}: held-out cosine loss {held_loss:.4f}")
    net.load_state_dict(best_state)
    torch.save(net.state_dict(), out_dir / HEAD_FILE)
    return {
        "variant": EMBEDDING_VARIANT,
        "backbone": DEFAULT_ENCODER,
        "hidden": settings.embedding_hidden,
        "max_position": max_position,
    }


class EmbeddingSubtaskPredictor:
    """The ``embedding`` variant: next-subtask embeddings from a residual MLP."""

    def __init__(self, net: Any, embedder: Embedder, max_position: int, version: str) -> None:
        import torch

        self._torch = torch
        self.net = net.eval()
        self.embedder = embedder
        self.max_position = max_position
        self.version = version
        self._lock = threading.Lock()

    @classmethod
    def load(cls, folder: Path, meta: dict[str, Any], version: str, embedder: Embedder) -> EmbeddingSubtaskPredictor:
        import torch

        max_position = int(meta["max_position"])
        net = mlp(2 * EMBEDDING_DIM + max_position + 1, int(meta["hidden"]))
        net.load_state_dict(torch.load(folder / HEAD_FILE, map_location="cpu", weights_only=True))
        return cls(net, embedder, max_position, version)

    def step(
        self,
        current: np.ndarray[Any, np.dtype[np.float32]],
        request: np.ndarray[Any, np.dtype[np.float32]],
        seqs: Sequence[int],
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """One step for a batch of rows: the predicted next embeddings (normalised)."""
        inputs = self._torch.from_numpy(_features(current, request, seqs, self.max_position))
        with self._lock, self._torch.inference_mode():
            delta = self.net(inputs).numpy()
        return _normalise(current + delta)

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        current, request = self.embedder.embed_many([state.current, state.request])
        current, request = current[None, :], request[None, :]
        predictions: list[Vector] = []
        for k in range(steps):
            current = self.step(current, request, [state.seq + k])
            predictions.append(current[0])
        return predictions


def subtask_prompt(request: str, current: str, seq: int) -> str:
    """What the generative predictor reads: the request and the subtask about to run."""
    return f"Request: {request}\nCurrent subtask (step {seq}): {current}\nWrite the next subtask only."


def train_generative_predictor(
    pairs: Sequence[SubtaskPair],
    *,
    settings: EstimatorSettings,
    artifacts: Path,
    out_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    checkpoint = generator_checkpoint(settings.generator, artifacts)
    examples = [(subtask_prompt(p.state.request, p.state.current, p.state.seq), p.next_subtask) for p in pairs]
    train_causal_lora(checkpoint, examples, settings=settings, out_dir=out_dir, progress=progress)
    return {
        "variant": GENERATIVE_VARIANT,
        "backbone": settings.generator,
        "max_new_tokens": settings.generator_max_new_tokens,
    }


class GenerativeSubtaskPredictor:
    """The ``generative`` variant: generate the next subtask's text, then embed it."""

    def __init__(self, generator: CausalGenerator, embedder: Embedder, version: str) -> None:
        self.generator = generator
        self.embedder = embedder
        self.version = version

    @classmethod
    def load(
        cls, folder: Path, meta: dict[str, Any], version: str, embedder: Embedder, artifacts: Path
    ) -> GenerativeSubtaskPredictor:
        checkpoint = generator_checkpoint(meta["backbone"], artifacts)
        return cls(CausalGenerator(checkpoint, folder, int(meta["max_new_tokens"])), embedder, version)

    def next_texts(self, states: Sequence[ChainState]) -> list[str]:
        """The predicted next subtask of each state, as text (first line of the generation)."""
        answers = self.generator.generate([subtask_prompt(s.request, s.current, s.seq) for s in states])
        return [(answer.splitlines() or [""])[0].strip() for answer in answers]

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        texts: list[str] = []
        current = state
        for _ in range(steps):
            (text,) = self.next_texts([current])
            texts.append(text)
            current = ChainState(state.request, state.history, text, current.seq + 1)
        return list(self.embedder.embed_many(texts)) if texts else []
