"""Fitting the two baselines that learn from profiled trees: HybridLLM's router and the Oracle's plan.

``hera-router eval fit-baselines`` calls these. The HybridLLM router is trained on a *training*
profile (its own requests split into train and validation, the threshold tuned on validation, as
Ding et al. do); the Oracle plan is searched over the profile you evaluate on, since the Oracle is
by definition the best assignment of those very requests (the HERA paper, §2).

Both write the files the policies load: ``HERA_ROUTING__HYBRIDLLM_MODEL_PATH`` and
``HERA_ROUTING__ORACLE_PLAN_PATH``; :func:`default_paths` names where the evaluation commands put
them when those are unset.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hera_router.routing import hybridllm, oracle
from hera_router.training.replay import ProfileSet

if TYPE_CHECKING:
    from hera_router.config import RoutingSettings, Settings


@dataclass(frozen=True, slots=True)
class BaselinePaths:
    hybridllm: Path
    oracle: Path


def default_paths(settings: Settings) -> BaselinePaths:
    folder = settings.artifacts / "baselines"
    return BaselinePaths(hybridllm=folder / "hybridllm.json", oracle=folder / "oracle-plan.json")


def with_baseline_paths(routing: RoutingSettings, paths: BaselinePaths) -> RoutingSettings:
    """``routing`` with the baseline files filled in where the settings name none."""
    return routing.model_copy(
        update={
            "hybridllm_model_path": routing.hybridllm_model_path or paths.hybridllm,
            "oracle_plan_path": routing.oracle_plan_path or paths.oracle,
        }
    )


def _in_validation(key: str, fraction: float, seed: int) -> bool:
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 < fraction


@dataclass(frozen=True, slots=True)
class HybridFit:
    router: hybridllm.HybridRouter
    train_samples: int
    validation_samples: int


def fit_hybridllm(
    profile: ProfileSet,
    path: Path,
    *,
    validation_fraction: float = 0.3,
    max_quality_drop: float = 0.05,
    seed: int = 0,
) -> HybridFit:
    """Train the per-subtask router on ``profile`` (split by request) and save it to ``path``."""
    train: list[hybridllm.QualitySamples] = []
    validation: list[hybridllm.QualitySamples] = []
    for tree in profile.trees:
        samples = hybridllm.samples_from_tree(tree.oracle_tree(profile.max_depth))
        (validation if _in_validation(tree.key, validation_fraction, seed) else train).extend(samples)
    if not train or not validation:
        raise ValueError(
            f"profile run {profile.run_id} gives {len(train)} training and {len(validation)} validation subtasks; "
            "HybridLLM needs both (profile more requests)"
        )
    router = hybridllm.train_router(train, validation, max_quality_drop=max_quality_drop)
    path.parent.mkdir(parents=True, exist_ok=True)
    router.save(path)
    return HybridFit(router, len(train), len(validation))


def fit_oracle(profile: ProfileSet, path: Path, *, accuracy_fraction: float = 0.9) -> oracle.OracleResult:
    """Search the Oracle assignment of ``profile``'s requests and save its plan to ``path``."""
    trees = {tree.request: tree.oracle_tree(profile.max_depth) for tree in profile.trees}
    result = oracle.search(trees, accuracy_fraction=accuracy_fraction)
    path.parent.mkdir(parents=True, exist_ok=True)
    oracle.save_plan(result, path)
    return result
