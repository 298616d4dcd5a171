"""``hera-router bootstrap``: profile a default simulated set, train every estimator, promote them.

What a fresh install runs once so that the ``hera`` policy has estimators to consult. With the
default CPU variants (embedding SP, prompted SD, MiniLM + LoRA for URC and DP) it takes a few
minutes on two cores; docs/estimators.md records the measured time.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hera_router.estimators import ESTIMATOR_NAMES
from hera_router.training.labels import request_trees
from hera_router.training.profiling import create_run, load_trees, profile_run, run_config
from hera_router.training.trainers import TrainResult, train_estimator

if TYPE_CHECKING:
    from hera_router.workers.runtime import Runtime


@dataclass(slots=True)
class BootstrapResult:
    run_id: uuid.UUID
    requests: int
    trained: list[TrainResult] = field(default_factory=list)


def bootstrap(
    runtime: Runtime,
    *,
    name: str = "bootstrap",
    on_request: Callable[[int, int], None] | None = None,
    progress: Callable[[str], None] | None = None,
    promote: bool = True,
) -> BootstrapResult:
    """Profile ``estimators.profile_requests`` simulated requests, train all five, promote them."""
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope

    settings = runtime.settings
    source = "sim" if settings.edge.backend == "sim" and settings.cloud.backend == "sim" else "real"
    run_id = create_run(runtime.sessions, name, source, run_config(settings))
    requests = profile_run(settings, runtime.sessions, run_id, on_request=on_request)
    trees = request_trees(load_trees(runtime.sessions, run_id))
    result = BootstrapResult(run_id, requests)
    for estimator in ESTIMATOR_NAMES:
        trained = train_estimator(runtime, estimator, run_id, trees=trees, progress=progress)
        if trained is None:  # claimed by a concurrent run of the same name and second: not ours
            continue
        result.trained.append(trained)
        if promote:
            with session_scope(runtime.sessions) as session:
                EstimatorVersionRepository(session).promote(estimator, trained.version)
    return result
