"""A sentence encoder + LoRA with a regression or classification head (URC and DP).

The shape: ``AutoModelForSequenceClassification`` on the encoder
backbone, LoRA on the attention projections, the new head trained in full (peft's
``modules_to_save``). A plain torch loop instead of ``Trainer``: the data are a few thousand short
texts, and the loop keeps start-up to a second and the behaviour independent of Trainer's
argument churn across transformers releases.

Early stopping: a share of the training examples (``encoder_early_stopping_fraction``) is held out,
the loss on it is measured before training and after every epoch, and the adapter of the best
epoch is the one saved. On the small, noisy profiles these estimators learn from, the last epoch
is usually an over-fit one (URC on 96 requests: training accuracy 0.9, validation below the
majority decision). Regression heads (URC) only: for the class-balanced DP the held-out loss is a
poor proxy for balanced accuracy on a small, imbalanced split — measured, it kept the untrained
epoch and DP fell to the majority class — so DP trains every epoch, as before.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.config import EstimatorSettings
from hera_router.estimators.similarity import DEFAULT_ENCODER, encoder_path

ADAPTER_DIR = "adapter"
MAX_TOKENS = 128
"""Subtasks and requests are a sentence or two; longer inputs are truncated."""

MIN_HELD_OUT = 8
"""Fewer held-out examples than this and early stopping is off (its loss would be noise)."""

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
    init_from: Path | None = None,
) -> None:
    """Fine-tune and save the adapter (with its head) under ``out_dir/adapter``.

    ``num_labels == 1`` is regression (float labels, MSE); more is classification (int labels),
    optionally with the loss weighted by 1/(class frequency): the balanced-accuracy objective, so
    that rare classes (distances above 0, ∞) are predicted where there is any evidence for them.
    ``init_from``: the folder of an existing version (its ``adapter``, same backbone and labels)
    to continue training from, instead of a fresh LoRA and head (continual fine-tuning).
    """
    import torch

    torch.manual_seed(settings.train_seed)
    tokenizer, model = _model_for_training(backbone, labels, num_labels, settings, init_from)
    weights = None
    if balance_classes and num_labels > 1:
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_labels).astype(np.float32)
        weights = torch.tensor(1.0 / np.maximum(counts, 1.0), dtype=torch.float32)
        weights = weights / weights[counts > 0].mean()
    _Fit(tokenizer, model, texts, labels, num_labels == 1, weights, settings, progress).run()
    model.save_pretrained(out_dir / ADAPTER_DIR)


def _model_for_training(
    backbone: str,
    labels: Sequence[float] | Sequence[int],
    num_labels: int,
    settings: EstimatorSettings,
    init_from: Path | None,
) -> tuple[Any, Any]:
    """(tokenizer, peft model) ready to train: a fresh LoRA + head, or ``init_from``'s adapter."""
    import torch
    from peft import LoraConfig, PeftModel, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = encoder_path(backbone)
    tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
    regression = num_labels == 1
    base: Any = AutoModelForSequenceClassification.from_pretrained(
        path,
        num_labels=num_labels,
        problem_type="regression" if regression else "single_label_classification",
        local_files_only=True,
    )
    if init_from is not None:
        # The saved adapter carries the LoRA weights and the trained head (modules_to_save).
        return tokenizer, PeftModel.from_pretrained(base, init_from / ADAPTER_DIR, is_trainable=True)
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
        # otherwise be spent walking the output from 0 to where the targets are; and with zero
        # weights, so that the untrained model *is* the mean predictor: early stopping then never
        # returns anything worse than the trivial baseline on its held-out part.
        head: Any = getattr(model.base_model.model, "classifier", None)
        head = head.modules_to_save["default"] if hasattr(head, "modules_to_save") else head
        if isinstance(head, torch.nn.Linear) and head.bias is not None:
            with torch.no_grad():
                head.bias.fill_(float(np.mean(np.asarray(labels, dtype=np.float32))))
                head.weight.zero_()
    return tokenizer, model


class _Fit:
    """The training loop with early stopping on a held-out share of the examples."""

    def __init__(
        self,
        tokenizer: Any,
        model: Any,
        texts: Sequence[str],
        labels: Sequence[float] | Sequence[int],
        regression: bool,
        weights: Any,
        settings: EstimatorSettings,
        progress: Progress | None,
    ) -> None:
        import torch

        self.torch = torch
        self.tokenizer, self.model, self.texts, self.labels = tokenizer, model, texts, labels
        self.regression, self.weights, self.settings, self.progress = regression, weights, settings, progress
        # Regression heads only: see the module docstring for why DP trains every epoch.
        fraction = settings.encoder_early_stopping_fraction if regression else 0.0
        self.order, self.held_out = _early_stopping_split(len(texts), fraction, settings.train_seed)
        self.trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    def loss_of(self, batch: Sequence[int]) -> Any:
        torch = self.torch
        inputs = self.tokenizer(
            [self.texts[i] for i in batch], padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        target = (
            torch.tensor([float(self.labels[i]) for i in batch], dtype=torch.float32)
            if self.regression
            else torch.tensor([int(self.labels[i]) for i in batch], dtype=torch.long)
        )
        if self.weights is None:
            return self.model(**inputs, labels=target).loss
        return torch.nn.functional.cross_entropy(self.model(**inputs).logits, target, weight=self.weights)

    def held_out_loss(self) -> float:
        self.model.eval()
        total = 0.0
        with self.torch.inference_mode():
            for start in range(0, len(self.held_out), 64):
                batch = self.held_out[start : start + 64]
                total += float(self.loss_of(batch)) * len(batch)
        self.model.train()
        return total / len(self.held_out)

    def snapshot(self) -> dict[str, Any]:
        return {name: p.detach().clone() for name, p in self.trainable}

    def run(self) -> None:
        settings, order = self.settings, self.order
        optimizer = self.torch.optim.AdamW([p for _, p in self.trainable], lr=settings.encoder_learning_rate)
        shuffle = random.Random(settings.train_seed)
        batches = max(1, -(-len(order) // settings.encoder_batch_size))
        # Small data sets get more passes, so that a tiny profile still sees enough optimiser steps.
        epochs = max(settings.encoder_epochs, -(-settings.encoder_min_steps // batches))
        best_loss = self.held_out_loss() if self.held_out else float("inf")
        best_state, best_epoch, since_best = self.snapshot(), 0, 0
        self.model.train()
        for epoch in range(1, epochs + 1):
            shuffle.shuffle(order)
            total = 0.0
            for start in range(0, len(order), settings.encoder_batch_size):
                batch = order[start : start + settings.encoder_batch_size]
                loss = self.loss_of(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * len(batch)
            message = f"epoch {epoch}/{epochs}: loss {total / max(1, len(order)):.4f}"
            if not self.held_out:
                self.say(message)
                continue
            loss_now = self.held_out_loss()
            self.say(f"{message}, held-out {loss_now:.4f}")
            if loss_now < best_loss:
                best_loss, best_state, best_epoch, since_best = loss_now, self.snapshot(), epoch, 0
            else:
                since_best += 1
                if since_best >= settings.encoder_patience:
                    break
        if self.held_out:
            # Restore the epoch with the lowest held-out loss (epoch 0: the model as it started).
            with self.torch.no_grad():
                for name, p in self.trainable:
                    p.copy_(best_state[name])
            self.say(f"kept epoch {best_epoch} (held-out loss {best_loss:.4f})")


def _early_stopping_split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices) for early stopping; no held-out part below 8 examples."""
    held = round(n * fraction)
    if held < MIN_HELD_OUT or n - held < MIN_HELD_OUT:
        return list(range(n)), []
    order = list(range(n))
    random.Random(seed + 1).shuffle(order)
    return sorted(order[held:]), sorted(order[:held])


def share_backbone(model: Any, shared: Any, adapted: Collection[str] | None = None) -> int:
    """Make ``model``'s encoder use ``shared``'s modules wherever LoRA left them unchanged.

    ``model`` is a merged head (``BertForSequenceClassification`` after ``merge_and_unload``)
    loaded from the same checkpoint as ``shared`` (the process's SBERT transformer,
    :attr:`~hera_router.estimators.similarity.Embedder.backbone`). Merging changed only the
    modules LoRA adapted (``adapted``: the adapter's target module names, query and value; None:
    every linear layer), so every other module (embeddings, keys, attention outputs, feed-forward
    blocks, pooler) holds the same bytes of the same file, and the head runs on the shared
    module objects. Structure (module types, tensor names, shapes, dtypes) is checked; values are
    not compared: a full comparison reads every page of both copies, and for the 30,522-row word
    embeddings (a router touches a few hundred rows) that made the process larger than not
    sharing at all (benchmarks/results/memory.md). Returns the parameters shared.
    """
    import torch

    base = getattr(model, "base_model_prefix", "")
    encoder = getattr(model, base, None) if base else None
    if encoder is None or type(encoder) is not type(shared):
        return 0

    def untouched(module: Any) -> bool:
        for name, child in module.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if (adapted is None and isinstance(child, torch.nn.Linear)) or (adapted is not None and leaf in adapted):
                return False
        return True

    def same_shape(mine: Any, theirs: Any) -> bool:
        if type(mine) is not type(theirs):
            return False
        a, b = mine.state_dict(), theirs.state_dict()
        return a.keys() == b.keys() and all(a[k].shape == b[k].shape and a[k].dtype == b[k].dtype for k in a)

    def walk(mine: Any, theirs: Any) -> int:
        count = 0
        for name, child in list(mine.named_children()):
            other = getattr(theirs, name, None)
            if other is None or not any(True for _ in child.parameters()):
                continue
            if (adapted is None or name not in adapted) and untouched(child) and same_shape(child, other):
                mine.add_module(name, other)  # the shared module object itself
                count += sum(p.numel() for p in other.parameters())
            else:
                count += walk(child, other)
        return count

    return walk(encoder, shared)


def adapted_modules(adapter: Path) -> set[str] | None:
    """The module names a saved LoRA adapter targets (None: every linear layer, or unknown)."""
    try:
        targets = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get("target_modules")
    except (OSError, ValueError):
        return None
    return {str(t) for t in targets} if isinstance(targets, list) else None


class EncoderHead:
    """A trained encoder head, merged into its backbone for inference. Thread-safe.

    With ``shared`` (the process's SBERT transformer, same backbone) every module LoRA left
    unchanged is the shared one (:func:`share_backbone`); ``shared_parameters`` says how many.
    """

    def __init__(self, backbone: str, folder: Path, num_labels: int, shared: Any | None = None) -> None:
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
        self.shared_parameters = (
            share_backbone(self._model, shared, adapted_modules(folder / ADAPTER_DIR))
            if shared is not None and path == encoder_path(DEFAULT_ENCODER)
            else 0
        )
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        return self._model

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
