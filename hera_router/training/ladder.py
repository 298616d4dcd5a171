"""Fitting the N-model ladder from a profile of every rung: the pair thresholds, the cost order of
the rungs, and the ladder's start estimators, the production artifact ``hera-ladder`` loads
through ``HERA_ROUTING__LADDER_ESTIMATORS``.

A ladder profile runs each request's chain with the top rung; at every step every rung answers
the same prompt once (N calls per step, linear in the number of models), which gives per step each
rung's confidence, whether its result was right and what the call cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hera_router.agent.format import parse_step, render_step_messages
from hera_router.backends.base import Generation, GenerationParams
from hera_router.backends.pricing import bytes_sent, call_cost
from hera_router.config import ModelTier, Settings
from hera_router.estimators.ladder_pair import LadderStarts, PairHeads, TextEncoder, fit_ladder_starts, fit_pair_heads
from hera_router.routing.ladder import pair_threshold
from hera_router.simulator.backend import SimBackend
from hera_router.simulator.generate import TaskRecord

PARAMS = GenerationParams(max_new_tokens=256)


@dataclass
class Rung:
    tier: ModelTier
    backend: SimBackend


def price(settings: Settings, rung: Rung, generation: Generation, sent: int) -> tuple[float, float]:
    cost = call_cost(
        settings,
        rung.tier.backend.model,
        generation.prompt_tokens,
        generation.completion_tokens,
        generation.latency_s,
        rung.tier.role,
        sent,
    )
    paper = cost.tokens_usd if rung.tier.role == "cloud" else 0.0
    return cost.total, paper


@dataclass(frozen=True, slots=True)
class ProfiledStep:
    text: str
    seq: int
    confidence: tuple[float, ...]
    correct: tuple[bool, ...]
    cost: tuple[float, ...] = ()
    """Each rung's full cost for the step."""
    request: str = ""
    """The profiled request the step belongs to (cross-validation groups by it)."""


def profile(
    tasks: Sequence[TaskRecord], rungs: Sequence[Rung], settings: Settings, max_steps: int = 15
) -> tuple[list[ProfiledStep], int, list[float]]:
    """Every rung on every step of the top rung's chain: N calls per step. Returns the steps, the
    number of calls made and each rung's mean full cost per call."""
    steps: list[ProfiledStep] = []
    calls = 0
    spent = [0.0] * len(rungs)
    for task in tasks:
        history: list[tuple[str, str]] = []
        current = task.request
        for step in range(max_steps):
            messages = render_step_messages(task.request, history, current, step)
            generations = [rung.backend.generate(messages, PARAMS) for rung in rungs]
            calls += len(generations)
            costs = []
            for k, (rung, generation) in enumerate(zip(rungs, generations, strict=True)):
                sent = bytes_sent(messages) if rung.tier.role == "cloud" else 0
                costs.append(price(settings, rung, generation, sent)[0])
                spent[k] += costs[-1]
            steps.append(
                ProfiledStep(
                    text=current,
                    seq=step,
                    confidence=tuple(float(g.extra.get("mean_logprob", "nan")) for g in generations),
                    # A step that computes nothing ("" ground truth) cannot be wrong.
                    correct=tuple(g.extra.get("sim_correct", "") != "0" for g in generations),
                    cost=tuple(costs),
                    request=task.id,
                )
            )
            parsed = parse_step(generations[-1].text)
            history.append((current, parsed.result))
            if parsed.final_answer is not None or parsed.next_subtask is None:
                break
            current = parsed.next_subtask
    per_step = max(len(steps), 1)
    return steps, calls, [total / per_step for total in spent]


def fit_pair_thresholds(steps: Sequence[ProfiledStep], low: int, high: int, tolerance: float) -> float:
    """Threshold on rung ``low``'s confidence for the pair (low, high), from profiled steps: a step
    "needed" rung ``high`` when ``low`` got it wrong and ``high`` right."""
    scores = [s.confidence[low] for s in steps]
    helped = [not s.correct[low] and s.correct[high] for s in steps]
    return pair_threshold(scores, helped, tolerance)


def cost_ordered(steps: Sequence[ProfiledStep], per_call_cost: Sequence[float]) -> list[int]:
    """The rungs cheapest first by their measured mean full cost per profiled call, keeping only a
    rung that is right on more profiled steps than every cheaper rung kept (a dearer, weaker model
    is never worth trying first). The top rung (the most accurate) always stays."""
    accuracy = [sum(s.correct[k] for s in steps) / max(len(steps), 1) for k in range(len(per_call_cost))]
    order = sorted(range(len(per_call_cost)), key=lambda k: (per_call_cost[k], -accuracy[k]))
    kept: list[int] = []
    for k in order:
        if not kept or accuracy[k] > accuracy[kept[-1]]:
            kept.append(k)
    return kept


def step_array(steps: Sequence[ProfiledStep], attribute: str) -> np.ndarray[Any, Any]:
    return np.asarray([getattr(s, attribute) for s in steps], dtype=np.float64)


def fit_start_heads(steps: Sequence[ProfiledStep], encode: TextEncoder) -> PairHeads:
    """Per adjacent pair, the head that predicts from a step's text and position whether the
    higher rung is needed (the lower one wrong, the higher one right)."""
    embeddings = encode.embed_many([s.text for s in steps])
    return fit_pair_heads(embeddings, [s.seq for s in steps], [s.request for s in steps], step_array(steps, "correct"))


def fit_starts(
    heads: PairHeads,
    names: Sequence[str],
    steps: Sequence[ProfiledStep],
    thresholds: Sequence[float],
    encoder: str,
    *,
    tolerance: float,
    **meta: Any,
) -> LadderStarts:
    """The start estimators for a ladder with verify ``thresholds``, fitted on the profiled steps."""
    correct, confidence, cost = (step_array(steps, a) for a in ("correct", "confidence", "cost"))
    seqs = [s.seq for s in steps]
    return fit_ladder_starts(
        heads, names, seqs, confidence, correct, cost, thresholds, encoder, tolerance=tolerance, **meta
    )


def save_starts(starts: dict[str, Any], folder: Path, preset: str, seed: int) -> Path:
    """Write a fitted artifact (``LadderStarts.to_json``) as ``starts-<preset>-seed<seed>.json``."""
    slug = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in preset).strip("-")
    path = folder / f"starts-{slug}-seed{seed}.json"
    folder.mkdir(parents=True, exist_ok=True)
    LadderStarts.from_json(starts).save(path)
    return path
