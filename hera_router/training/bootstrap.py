"""``hera-router bootstrap``: profile, train every estimator, promote them, calibrate, fit HybridLLM.

What a fresh install runs once so that the ``hera`` policy has estimators to consult:

1. profile ``estimators.profile_requests`` requests (binary trees, logprobs kept), and
   ``estimators.urc_requests`` more whose pure chains only URC uses (its label is a whole-request
   outcome: it needs many more requests than the per-step estimators);
2. train and promote URC, SP_SLM, SP_LLM, DP, SD and the divergence estimator (in that order: the
   divergence heads read the active SP predictions);
3. calibrate τ_req, κ base and the verify threshold on the validation requests for the active
   versions (``training/calibration.py``) and promote the calibration;
4. fit the HybridLLM baseline's router on the same profile (``hera-router run -p hybridllm``
   then works out of the box).

With the default CPU variants it takes a few minutes on two cores; docs/estimators.md records the
measured time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.estimators import ESTIMATOR_NAMES
from hera_router.training.labels import request_trees
from hera_router.training.profiling import create_run, load_trees, profile_run, run_config
from hera_router.training.trainers import TrainResult, train_estimator

if TYPE_CHECKING:
    from hera_router.db.runtime import Runtime


@dataclass(slots=True)
class BootstrapResult:
    run_id: uuid.UUID
    requests: int
    trained: list[TrainResult] = field(default_factory=list)
    calibration: dict[str, Any] | None = None
    hybridllm_path: Path | None = None


def bootstrap(
    runtime: Runtime,
    *,
    name: str = "bootstrap",
    on_request: Callable[[int, int], None] | None = None,
    progress: Callable[[str], None] | None = None,
    promote: bool = True,
) -> BootstrapResult:
    """Profile, train and promote every estimator, calibrate, fit HybridLLM (module docstring)."""
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope

    settings = runtime.settings
    source = "sim" if settings.edge.backend == "sim" and settings.cloud.backend == "sim" else "real"
    say = progress or (lambda _: None)
    estimators = settings.estimators
    start = estimators.profile_offset
    run_id = create_run(runtime.sessions, name, source, run_config(settings, offset=start))
    requests = profile_run(settings, runtime.sessions, run_id, on_request=on_request)
    trees = request_trees(load_trees(runtime.sessions, run_id))
    urc_trees = []
    if settings.estimators.urc_requests:
        say(f"profiling {settings.estimators.urc_requests} more requests for URC (their pure chains)")
        urc_run = create_run(
            runtime.sessions,
            f"{name}-urc",
            source,
            run_config(settings, n=estimators.urc_requests, offset=start + estimators.profile_requests),
        )
        profile_run(settings, runtime.sessions, urc_run)
        urc_trees = request_trees(load_trees(runtime.sessions, urc_run))
    result = BootstrapResult(run_id, requests)
    for estimator in ESTIMATOR_NAMES:
        data = [*trees, *urc_trees] if estimator == "urc" else trees
        trained = train_estimator(runtime, estimator, run_id, trees=data, progress=progress)
        if trained is None:  # claimed by a concurrent run of the same name and second: not ours
            continue
        result.trained.append(trained)
        if promote:
            with session_scope(runtime.sessions) as session:
                EstimatorVersionRepository(session).promote(estimator, trained.version)
    if promote:
        from hera_router.training.calibration import calibrate

        search_run = None
        if estimators.calibration_requests:
            say(f"profiling {estimators.calibration_requests} more requests to calibrate the thresholds on")
            search_run = create_run(
                runtime.sessions,
                f"{name}-calibration",
                source,
                run_config(
                    settings,
                    n=estimators.calibration_requests,
                    offset=start + estimators.profile_requests + estimators.urc_requests,
                ),
            )
            profile_run(settings, runtime.sessions, search_run)
        result.calibration = calibrate(runtime, run_id, search_run=search_run, progress=progress)
    result.hybridllm_path = fit_default_hybridllm(runtime, run_id, progress)
    from hera_router.estimators.similarity import prepare_router_encoder

    prepare_router_encoder(settings, progress)
    return result


def fit_default_hybridllm(runtime: Runtime, run_id: uuid.UUID, progress: Callable[[str], None] | None) -> Path | None:
    """HybridLLM's router fitted on the bootstrap profile, where ``run -p hybridllm`` looks for it."""
    from hera_router.evaluation.baselines import default_paths, fit_hybridllm
    from hera_router.evaluation.replay import load_profile

    path = default_paths(runtime.settings).hybridllm
    try:
        fitted = fit_hybridllm(load_profile(runtime.settings, runtime.sessions, run_id), path)
    except ValueError as exc:  # too few profiled subtasks: say so, HERA does not need it
        if progress is not None:
            progress(f"hybridllm: not fitted ({exc})")
        return None
    if progress is not None:
        threshold = fitted.router.threshold
        progress(f"hybridllm: router fitted on {fitted.train_samples} subtasks, threshold {threshold:.3f}")
    return path
