"""A sentence encoder + LoRA with a regression or classification head (URC and DP).

The shape tested in feasibility.md §3.a: ``AutoModelForSequenceClassification`` on the encoder
backbone, LoRA on the attention projections, the new head trained in full (peft's
``modules_to_save``). A plain torch loop instead of ``Trainer``: the data are a few thousand short
texts, and the loop keeps start-up to a second and the behaviour independent of Trainer's
argument churn across transformers releases.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.config import EstimatorSettings
from hera_router.estimators.similarity import encoder_path

ADAPTER_DIR = "adapter"
MAX_TOKENS = 128
"""Subtasks and requests are a sentence or two; longer inputs are truncated."""

Progress = Callable[[str], None]


def _target_modules(model_type: str) -> list[str] | str:
    # BERT-family names for the attention projections; any other backbone (ModernBERT on a GPU
    # deployment) gets LoRA on every linear layer, which peft resolves per architecture.
    return ["query", "value"] if model_type == "bert" else "all-linear"


def train_encoder_head(
    backbone: str,
    texts: Sequence[str],
    labels: Sequence[float] | Sequence[int],
    *,
    num_labels: int,
    settings: EstimatorSettings,
    out_dir: Path,
    progress: Progress | None = None,
    balance_classes: bool = False,
) -> None:
    """Fine-tune and save the adapter (with its head) under ``out_dir/adapter``.

    ``num_labels == 1`` is regression (float labels, MSE); more is classification (int labels),
    optionally with the loss weighted by 1/(class frequency): the balanced-accuracy objective, so
    that rare classes (distances above 0, ∞) are predicted where there is any evidence for them.
    """
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(settings.train_seed)
    path = encoder_path(backbone)
    tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
    regression = num_labels == 1
    base: Any = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=num_labels,
        problem_type="regression" if regression else "single_label_classification",
        local_files_only=True,
    )
    model: Any = get_peft_model(
        base,
        LoraConfig(
            task_type=TaskType.SEQ_CLS,
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=_target_modules(base.config.model_type),
        ),
    )
    if regression and len(labels):
        # Start the new head at the training mean: with few examples the first epochs would
        # otherwise be spent walking the output from 0 to where the targets are.
        head: Any = getattr(model.base_model.model, "classifier", None)
        head = head.modules_to_save["default"] if hasattr(head, "modules_to_save") else head
        if isinstance(head, torch.nn.Linear) and head.bias is not None:
            with torch.no_grad():
                head.bias.fill_(float(np.mean(np.asarray(labels, dtype=np.float32))))
    weights = None
    if balance_classes and not regression:
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels).astype(np.float32)
        weights = torch.tensor(1.0 / np.maximum(counts, 1.0), dtype=torch.float32)
        weights = weights / weights[counts > 0].mean()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.encoder_learning_rate)
    order = list(range(len(texts)))
    shuffle = random.Random(settings.train_seed)
    batches = max(1, -(-len(order) // settings.encoder_batch_size))
    # Small data sets get more passes, so that a tiny profile still sees enough optimiser steps.
    epochs = max(settings.encoder_epochs, -(-settings.encoder_min_steps // batches))
    model.train()
    for epoch in range(epochs):
        shuffle.shuffle(order)
        total = 0.0
        for start in range(0, len(order), settings.encoder_batch_size):
            batch = order[start : start + settings.encoder_batch_size]
            inputs = tokenizer(
                [texts[i] for i in batch], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            target = (
                torch.tensor([float(labels[i]) for i in batch], dtype=torch.float32)
                if regression
                else torch.tensor([int(labels[i]) for i in batch], dtype=torch.long)
            )
            if weights is None:
                loss = model(**inputs, labels=target).loss
            else:
                loss = torch.nn.functional.cross_entropy(model(**inputs).logits, target, weight=weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if progress is not None:
            progress(f"epoch {epoch + 1}/{epochs}: loss {total / max(1, len(order)):.4f}")
    model.save_pretrained(out_dir / ADAPTER_DIR)


class EncoderHead:
    """A trained encoder head, merged into its backbone for inference. Thread-safe."""

    def __init__(self, backbone: str, folder: Path, num_labels: int) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = encoder_path(backbone)
        self._torch = torch
        self._tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        base: Any = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=num_labels, local_files_only=True
        )
        # Merged: inference then costs exactly the backbone's forward pass.
        self._model: Any = PeftModel.from_pretrained(base, folder / ADAPTER_DIR).merge_and_unload().eval()
        self._lock = threading.Lock()

    def logits(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray[Any, np.dtype[np.float32]]:
        """Raw head outputs, one row per text."""
        rows = []
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                inputs = self._tokenizer(
                    list(texts[start : start + batch_size]),
                    padding=True,
                    truncation=True,
                    max_length=MAX_TOKENS,
                    return_tensors="pt",
                )
                rows.append(self._model(**inputs).logits.float().numpy())
        return np.concatenate(rows).astype(np.float32)
