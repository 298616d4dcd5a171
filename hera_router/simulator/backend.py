"""``sim``: the simulated world behind the :class:`~hera_router.backends.base.ModelBackend` protocol.

Tokens are whitespace-separated words (as the ``echo`` backend counts them), so counts are exact
and cheap. Latency comes from the preset's latency model and is *reported*, not slept, unless
``realtime=True``: tests and benchmarks make thousands of calls a second. Sampling noise: at
``temperature == 0`` the answer depends only on (world seed, role, prompt); with a temperature
above 0 the request's ``seed`` (0 when unset) joins the hash, so different seeds sample different,
individually reproducible answers.

Confidence signal: ``extra["mean_logprob"]`` always, and per-token logprobs when asked for. Both
are lower on average when the step's result is wrong (see ``presets.toml``); the ground truth
itself is never reported, so a router cannot cheat through this backend.
"""

from __future__ import annotations

import random
import re
import time
from functools import lru_cache
from pathlib import Path

from hera_router.backends.base import (
    FinishReason,
    Generation,
    GenerationParams,
    Message,
    TokenLogprob,
)
from hera_router.simulator.model import SimulatedModel
from hera_router.simulator.presets import Behaviour, ModelRole, load_behaviour
from hera_router.simulator.world import World

_PIECE = re.compile(r"\s*\S+")


@lru_cache(maxsize=64)
def _count_system_words(content: str) -> int:
    return len(content.split())


def _count_words(message: Message) -> int:
    # The system prompt is the same long text on every call; counting it once saves a tenth of a call.
    return _count_system_words(message.content) if message.role == "system" else len(message.content.split())


@lru_cache(maxsize=16)
def _world(seed: int, preset: str, config_path: Path | None) -> tuple[World, Behaviour]:
    # One world per (seed, preset, file) per process: the SLM and LLM backends of a worker share it.
    behaviour = load_behaviour(preset, config_path)
    return World(seed, behaviour.world), behaviour


class SimBackend:
    """A simulated SLM or LLM. Thread-safe: no per-call state is kept."""

    name = "sim"

    def __init__(
        self,
        role: ModelRole,
        model: str,
        seed: int = 0,
        preset: str = "default",
        *,
        config_path: Path | None = None,
        realtime: bool = False,
        time_scale: float = 1.0,
        tier: str | None = None,
    ) -> None:
        """``tier`` picks a ladder model of the preset (``tiny``, ``mid``, ``cheap-cloud``, ``cloud``;
        presets.toml) instead of the plain ``role``; its base role must be ``role``."""
        if role not in ("slm", "llm"):
            raise ValueError(f"sim backend role must be 'slm' or 'llm', not {role!r}")
        self.role: ModelRole = role
        self.model = model
        self.seed = seed
        self.preset = preset
        self.realtime = realtime
        self.time_scale = time_scale
        world, behaviour = _world(seed, preset, config_path)
        if tier is None:
            self.behaviour = behaviour.role(role)
            self.simulated = SimulatedModel(world, role, self.behaviour)
        else:
            chosen = behaviour.tier(tier)
            if chosen.base != role:
                raise ValueError(f"simulated tier {tier!r} is built on the {chosen.base!r} role, not {role!r}")
            self.behaviour = chosen.behaviour
            self.simulated = SimulatedModel(world, role, self.behaviour, tier if chosen.own_stream else None)

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        noise = (params.seed or 0) if params.temperature > 0 else None
        reply = self.simulated.respond(messages, noise)
        text = reply.text
        finish: FinishReason = "stop"
        for stop in params.stop:
            cut = text.find(stop) if stop else -1
            if cut >= 0:
                text = text[:cut].rstrip()
        words = text.split()
        if len(words) > params.max_new_tokens:
            # Whitespace-led pieces, so the cut text keeps its line breaks.
            text = "".join(_PIECE.findall(text)[: params.max_new_tokens])
            words, finish = words[: params.max_new_tokens], "length"
        prompt_tokens = sum(_count_words(m) for m in messages)
        latency = self.behaviour.latency_s(prompt_tokens, len(words), reply.jitter)
        if self.realtime:
            time.sleep(latency * self.time_scale)
        logprobs = self._token_logprobs(text, reply.mean_logprob) if params.logprobs else None
        return Generation(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(words),
            latency_s=latency,
            finish_reason=finish,
            model=self.model,
            backend=self.name,
            logprobs=logprobs,
            # ``sim_correct``: the step's ground truth ("1"/"0", "" when it computes nothing), which
            # profiles keep so that confidence checks can be measured and replayed offline.
            extra={
                "mean_logprob": f"{reply.mean_logprob:.4f}",
                "sim_kind": reply.kind,
                "sim_correct": "" if reply.correct is None else str(int(reply.correct)),
            },
        )

    def _token_logprobs(self, text: str, mean: float) -> tuple[TokenLogprob, ...]:
        # Pieces keep their leading whitespace so they concatenate back to the text, as a
        # tokenizer's would; values spread around the call's mean and average close to it.
        pieces = _PIECE.findall(text)
        rng = random.Random(f"{self.seed}:{self.role}:{text}")
        spread = 0.3 * abs(mean) + 0.01
        return tuple(
            TokenLogprob(token=piece, logprob=round(min(0.0, mean + rng.gauss(0.0, spread)), 4)) for piece in pieces
        )
