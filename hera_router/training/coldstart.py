"""The cold-start threshold learned from shadow traffic: fit, store, serve (``routing/coldstart.py``).

After every stored shadow tree (``training/shadow.py``), while no complete set of trained
estimators is active, :func:`refit` replays cold-start ``hera`` at every candidate threshold on the
newest shadow trees (at most ``HERA_CONTINUAL__MAX_SHADOW_REQUESTS``; no model calls), fits the
threshold with :func:`~hera_router.routing.coldstart.fit_threshold` and stores it as the registry entry
``cold_start`` (``estimator_versions``: no artefact, everything in ``metrics``). A new version is
registered and promoted when the threshold changes; while it stays the same the active row's
counts are brought up to date, so the registry does not grow by one row per shadowed request.
Rolling back is ``hera-router promote cold_start VERSION``, as for an estimator; the next shadow
tree refits again.

:class:`ColdStartSource` is what a router reads it through: the active row, re-read at most every
``HERA_ESTIMATORS__RELOAD_INTERVAL_S`` seconds, or the configured default when there is none.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hera_router.db.enums import Executor
from hera_router.routing.coldstart import (
    MODE_COLD_START,
    MODE_TRAINED,
    REGISTRY_NAME,
    THRESHOLD_GRID,
    ColdStart,
    Point,
    ThresholdFit,
    fit_threshold,
)

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.db.runtime import Runtime
    from hera_router.routing.base import Policy
    from hera_router.training.profiling import TreeNode
    from hera_router.training.replay import ReplayTree

log = logging.getLogger(__name__)


def all_llm_answer(tree: ReplayTree) -> str | None:
    """The final answer of the tree's All-LLM chain, if the tree holds it."""
    node = tree.root
    while Executor.LLM in node.children:
        node = node.children[Executor.LLM]
        if node.is_final:
            return node.text
    return None


Gold = Mapping[str, tuple[str, str | None]]
"""Request key → (gold answer, metric) of the shadowed requests that have one."""


def _correct(answer: str | None, gold: str, metric: str | None) -> float:
    from hera_router.agent.scoring import score
    from hera_router.training.labels import same_answer

    if answer is None:
        return 0.0
    return score(metric, answer, gold) if metric else float(same_answer(answer, gold))


def replay_points(
    trees: Sequence[ReplayTree], settings: Settings, thresholds: Iterable[float], gold: Gold | None = None
) -> tuple[str, float, int, list[Point]]:
    """Cold-start ``hera`` replayed at each threshold on ``trees`` (no model calls: a request that
    leaves its tree is left out of that threshold's numbers). Returns (objective, All-LLM's score,
    scored requests, points): accuracy on the requests with a gold answer when at least
    ``cold_start_min_requests`` have one, else agreement with the All-LLM chain's answer."""
    from hera_router.routing.baselines import AllLLM
    from hera_router.routing.hera import HeraPolicy
    from hera_router.training.labels import same_answer
    from hera_router.training.outcomes import slm_usage
    from hera_router.training.replay import ProfileSet, Replayer

    references = {tree.key: answer for tree in trees if (answer := all_llm_answer(tree)) is not None}
    graded = {key: value for key, value in (gold or {}).items() if key in {t.key for t in trees}}
    objective = "accuracy" if len(graded) >= settings.routing.cold_start_min_requests else "agreement"
    keys = list(graded) if objective == "accuracy" else list(references)

    def quality(key: str, answer: str | None) -> float:
        if objective == "accuracy":
            return _correct(answer, *graded[key])
        return float(answer is not None and same_answer(answer, references[key]))

    replayer = Replayer(ProfileSet(None, list(trees), simulated=False), None, max_steps=settings.routing.max_steps)

    def measure(policy: Policy, threshold: float = 0.0) -> Point:
        outcomes, _ = replayer.run(policy, keys)
        ended = [o for o in outcomes if o.status != "off_tree"]
        scores = [quality(o.key, o.answer if o.status == "completed" else None) for o in ended]
        share = slm_usage(ended) if ended else 0.0
        return Point(threshold, sum(scores) / len(scores) if scores else 0.0, share, len(ended))

    reference = measure(AllLLM(settings.routing)).score if objective == "accuracy" else 1.0
    policy = HeraPolicy(settings.routing.model_copy(update={"cold_start": True, "use_verify": True}), name="hera")
    points = []
    for threshold in sorted(set(thresholds)):
        policy.cold_start = ColdStart(threshold)
        points.append(measure(policy, threshold))
    return objective, reference, len(keys), points


def fit_trees(trees: Mapping[str, Sequence[TreeNode]], settings: Settings, gold: Gold | None = None) -> ThresholdFit:
    """The cold-start threshold fitted on shadow trees (request key → profiled nodes)."""
    from hera_router.training.replay import build_tree

    replay_trees = [build_tree(key, nodes) for key, nodes in trees.items()]
    default = settings.routing.cold_start_threshold
    objective, reference, samples, points = replay_points(replay_trees, settings, (*THRESHOLD_GRID, default), gold)
    return fit_threshold(
        points,
        objective=objective,
        reference=reference,
        samples=samples,
        requests=len(replay_trees),
        default=default,
        min_samples=settings.routing.cold_start_min_requests,
        tolerance=settings.calibration.accuracy_tolerance,
    )


def shadow_gold(runtime: Runtime, keys: Iterable[str]) -> dict[str, tuple[str, str | None]]:
    """The gold answer and metric of each shadowed request (key: its id) that was submitted with one."""
    from sqlalchemy import select

    from hera_router.db.models import Request
    from hera_router.db.session import session_scope

    ids = []
    for key in keys:
        try:
            ids.append(uuid.UUID(key))
        except ValueError:
            continue
    gold: dict[str, tuple[str, str | None]] = {}
    with session_scope(runtime.sessions) as session:
        for start in range(0, len(ids), 500):
            rows = session.execute(
                select(Request.id, Request.gold_answer, Request.meta).where(Request.id.in_(ids[start : start + 500]))
            )
            for request_id, answer, meta in rows:
                if answer:
                    gold[str(request_id)] = (str(answer), str((meta or {}).get("metric") or "") or None)
    return gold


def trained(runtime: Runtime) -> bool:
    """Whether a complete set of trained estimators is active (HERA then routes in trained mode)."""
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators import REQUIRED_ESTIMATORS

    with session_scope(runtime.sessions) as session:
        active = {row.name for row in EstimatorVersionRepository(session).all_active()}
    return all(name in active for name in REQUIRED_ESTIMATORS)


def refit(runtime: Runtime) -> ThresholdFit | None:
    """Fit the cold-start threshold on the newest shadow trees and store it; None (nothing done)
    while trained estimators are active."""
    from hera_router.db.base import utcnow
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.training.continual import shadow_trees

    if trained(runtime):
        return None
    settings = runtime.settings
    trees, first, last = shadow_trees(runtime, None, settings.continual.max_shadow_requests)
    fit = fit_trees({tree.key: tree.nodes for tree in trees}, settings, shadow_gold(runtime, [t.key for t in trees]))
    metrics: dict[str, Any] = {
        **fit.to_json(),
        "metric": "score",
        "baseline_score": fit.reference,
        "default_threshold": settings.routing.cold_start_threshold,
        "min_samples": settings.routing.cold_start_min_requests,
        "fitted_at": utcnow().isoformat(),
    }
    with session_scope(runtime.sessions) as session:
        repository = EstimatorVersionRepository(session)
        active = repository.active(REGISTRY_NAME)
        if active is not None and float(active.metrics.get("threshold", float("nan"))) == round(fit.threshold, 6):
            active.metrics = metrics  # the same threshold on more samples: keep the version
            active.data_window_start, active.data_window_end = first, last
            session.flush()
            return fit
        row = repository.add_candidate(
            REGISTRY_NAME, "", metrics=metrics, backbone="shadow", data_window_start=first, data_window_end=last
        )
        repository.promote(REGISTRY_NAME, row.version)
    log.info("cold start: %s", describe_metrics(metrics, row.version))
    return fit


def refit_quietly(runtime: Runtime) -> None:
    """:func:`refit`, logging instead of raising: a failed refit must never fail the shadow task
    that stored its tree (the next shadowed request refits again)."""
    try:
        refit(runtime)
    except Exception:
        log.exception("cold start: refitting the threshold from shadow trees failed")


def describe_metrics(metrics: Mapping[str, Any], version: int | str) -> str:
    return (
        f"cold_start v{version}: threshold {float(metrics.get('threshold', 0.0)):.3f} "
        f"({'fitted on' if metrics.get('fitted') else 'the default; too few shadowed requests:'} "
        f"{int(metrics.get('samples', 0))} scored shadowed requests, minimum {int(metrics.get('min_samples', 0))}; "
        f"{metrics.get('objective', 'agreement')} {float(metrics.get('score', 0.0)):.1%} "
        f"(All-LLM {float(metrics.get('reference', 1.0)):.1%}) at {float(metrics.get('slm_share', 0.0)):.1%} SLM)"
    )


def cold_start_of(row: Any, default: float) -> ColdStart:
    """The :class:`ColdStart` a stored ``cold_start`` row describes (the default when not fitted)."""
    if row is None:
        return ColdStart(default)
    metrics = dict(row.metrics or {})
    fitted = bool(metrics.get("fitted"))
    return ColdStart(
        threshold=float(metrics.get("threshold", default)) if fitted else default,
        samples=int(metrics.get("samples", 0)) if fitted else 0,
        requests=int(metrics.get("requests", 0)),
        version=str(row.version) if fitted else None,
    )


def mode(runtime: Runtime) -> tuple[str, ColdStart | None]:
    """The mode ``hera`` routes in on this deployment, and the cold-start threshold in force (None
    in trained mode)."""
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope

    if trained(runtime):
        return MODE_TRAINED, None
    with session_scope(runtime.sessions) as session:
        row = EstimatorVersionRepository(session).active(REGISTRY_NAME)
        return MODE_COLD_START, cold_start_of(row, runtime.settings.routing.cold_start_threshold)


def mode_line(runtime: Runtime) -> str:
    """One sentence for ``hera-router estimators``: which mode ``hera`` is in and on what."""
    current, cold = mode(runtime)
    if cold is None:
        return "mode: trained (hera routes with the active estimators)"
    routing = runtime.settings.routing
    if not routing.cold_start:
        return (
            "mode: none (no active estimators and HERA_ROUTING__COLD_START=false: hera requests fail until bootstrap)"
        )
    return (
        f"mode: {current} (no active estimators: hera sends every step to the SLM and keeps it when its mean "
        f"token logprob reaches the threshold, else re-runs it on the LLM); {cold.describe()}; it moves off the "
        f"default after {routing.cold_start_min_requests} shadowed requests "
        f"(HERA_CONTINUAL__SHADOW_RATE {runtime.settings.continual.shadow_rate:g}); `hera-router bootstrap` "
        "switches to trained mode"
    )


class ColdStartSource:
    """Zero-argument callable returning the cold-start threshold in force. Thread-safe; re-reads
    the registry at most every ``reload_interval_s`` seconds and keeps the last value when the
    database does not answer."""

    def __init__(
        self, runtime: Runtime, *, reload_interval_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.runtime = runtime
        self.reload_interval_s = (
            reload_interval_s if reload_interval_s is not None else runtime.settings.estimators.reload_interval_s
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._value = ColdStart(runtime.settings.routing.cold_start_threshold)
        self._checked_at: float | None = None

    def __call__(self) -> ColdStart:
        with self._lock:
            due = self._checked_at is None or self._clock() - self._checked_at >= self.reload_interval_s
            if not due:
                return self._value
            self._checked_at = self._clock()
        try:
            from hera_router.db.repositories import EstimatorVersionRepository
            from hera_router.db.session import session_scope

            with session_scope(self.runtime.read_sessions) as session:
                value = cold_start_of(
                    EstimatorVersionRepository(session).active(REGISTRY_NAME),
                    self.runtime.settings.routing.cold_start_threshold,
                )
        except Exception:
            log.exception("cold start: cannot read the learned threshold; keeping %s", self._value.describe())
            return self._value
        with self._lock:
            self._value = value
        return value
