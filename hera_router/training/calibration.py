"""Thresholds calibrated on the deployment's own profiled traffic (τ_req, κ base, the verify threshold).

The paper fits its constants (τ_req 0.7, κ 0.6 + 0.02·min(ID, 5)) on its own SLM–LLM pair and says
they are meant to be re-tuned per pair. Here every ``bootstrap``, ``retrain`` promotion and
``promote`` re-fits them for the estimator versions now active, by replaying ``hera`` on the
validation requests of the profile the estimators were trained from (requests they never saw):

* objective (``HERA_CALIBRATION__OBJECTIVE``): ``accuracy-within`` (default) — the highest SLM
  share whose validation accuracy is at least (1 − ``accuracy_tolerance``) × All-LLM's on the same
  requests (3 % relative by default); ``slm-share`` — the best accuracy with an SLM share of at
  least ``target_slm_share``; ``cost`` — the best accuracy with a remote cost of at most
  ``target_cost`` × All-LLM's. Ties go to the higher accuracy, then the lower cost.
* search: τ_req (with URC off as one option), κ base and the verify threshold, one coordinate at
  a time (:func:`search`); each point is a replay of the search requests (estimator answers are
  cached across points). Steps a profile lacks are run on the simulator when the profile is
  simulated, and such requests are left out otherwise.
* trust: a stage whose estimator did not beat its baseline on held-out requests is switched off
  (``use_urc`` false for an untrusted URC, ``use_verify`` false without a trusted post head), so a
  constant URC never decides a request.
* held-out result: the validation requests are split in two by hash; the grid is searched on the
  first half and the chosen point is reported on the second (``held_out``), next to All-LLM's and
  the paper constants' results on it.

The result is a registry entry ``calibration`` (its folder holds ``calibration.json``: thresholds,
switches, the versions it was fitted for, the search's numbers), promoted with the estimators and
rolled back with them: a router uses it only while exactly those versions are active
(``estimators/loader.py``), and falls back to the settings (the paper's constants) otherwise.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.db.repositories import EstimatorVersionRepository
from hera_router.db.session import session_scope
from hera_router.estimators import CALIBRATION, ESTIMATOR_NAMES
from hera_router.estimators.artifacts import new_staging_dir, publish, stored_path
from hera_router.estimators.loader import CALIBRATION_FILE
from hera_router.routing.baselines import AllLLM
from hera_router.routing.hera import PAPER, HeraPolicy

if TYPE_CHECKING:
    from hera_router.config import RoutingSettings
    from hera_router.db.runtime import Runtime
    from hera_router.routing.base import Policy
    from hera_router.routing.estimators import Estimators
    from hera_router.training.outcomes import RequestOutcome
    from hera_router.training.replay import ProfileSet, Replayer

TAU_GRID: tuple[float | None, ...] = (None, 0.6, 0.8)
"""τ_req candidates; None = the URC stage off."""
KAPPA_GRID: tuple[float, ...] = (0.0, 0.5, 0.7, 0.8, 0.85, 0.9)
VERIFY_GRID: tuple[float | None, ...] = (
    None,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.88,
    0.9,
    0.92,
    0.93,
    0.94,
    0.95,
    0.96,
    0.97,
    0.98,
)
"""Verify thresholds; None = the verify stage off. Fine at the top: with a weak confidence signal
the usable operating points sit between 0.9 and 0.98 (measured on the weak-logprob world)."""
"""Verify thresholds; None = the verify stage off."""
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Point:
    tau_req: float | None
    kappa_base: float
    verify_threshold: float | None
    accuracy: float
    slm_share: float
    cost_ratio: float

    def thresholds(self, base: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"kappa_base": self.kappa_base, "use_urc": self.tau_req is not None and base["use_urc"]}
        out["use_verify"] = self.verify_threshold is not None and base["use_verify"]
        if self.tau_req is not None:
            out["tau_req"] = self.tau_req
        if self.verify_threshold is not None:
            out["verify_threshold"] = self.verify_threshold
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "tau_req": self.tau_req,
            "kappa_base": self.kappa_base,
            "verify_threshold": self.verify_threshold,
            "accuracy": round(self.accuracy, 4),
            "slm_share": round(self.slm_share, 4),
            "cost_ratio": round(self.cost_ratio, 4),
        }


def _half(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"calibration:{key}".encode(), digest_size=8).digest(), "big") % 2


def _summary(outcomes: Sequence[RequestOutcome], all_llm_costs: Mapping[str, float]) -> tuple[float, float, float]:
    """(accuracy, SLM share, remote cost / All-LLM's) of outcomes, off-tree requests left out."""
    done = [o for o in outcomes if o.status != "off_tree"]
    if not done:
        return 0.0, 0.0, 1.0
    accuracy = sum(o.score for o in done) / len(done)
    shares = [share for o in done if (share := o.slm_share) is not None]
    cost = sum(s.remote_cost_usd for o in done for s in o.steps)
    baseline = sum(all_llm_costs.get(o.key, 0.0) for o in done)
    return accuracy, (sum(shares) / len(shares) if shares else 0.0), (cost / baseline if baseline else 0.0)


def choose(points: Sequence[Point], all_llm_accuracy: float, objective: Mapping[str, Any]) -> Point:
    """The point the objective prefers (module docstring); the most accurate one if none qualifies."""
    kind = objective.get("objective", "accuracy-within")
    if kind == "slm-share":
        eligible = [p for p in points if p.slm_share >= float(objective["target_slm_share"])]
        key: Callable[[Point], tuple[float, ...]] = lambda p: (p.accuracy, p.slm_share, -p.cost_ratio)  # noqa: E731
    elif kind == "cost":
        eligible = [p for p in points if p.cost_ratio <= float(objective["target_cost"])]
        key = lambda p: (p.accuracy, -p.cost_ratio, p.slm_share)  # noqa: E731
    else:
        floor = (1.0 - float(objective.get("accuracy_tolerance", 0.03))) * all_llm_accuracy
        eligible = [p for p in points if p.accuracy >= floor - 1e-9]
        key = lambda p: (p.slm_share, p.accuracy, -p.cost_ratio)  # noqa: E731
    if not eligible:
        return max(points, key=lambda p: (p.accuracy, p.slm_share))
    return max(eligible, key=key)


def search(
    replayer: Replayer,
    estimators: Estimators,
    profile: ProfileSet,
    keys: Sequence[str],
    *,
    routing: Any,
    trust: Mapping[str, bool],
    objective: Mapping[str, Any] | None = None,
    all_llm_accuracy: float = 1.0,
    progress: Progress | None = None,
) -> list[Point]:
    """Replay ``hera`` on ``keys`` over the grid, one coordinate at a time; every point tried.

    A full grid costs a replay per point, and the points with a strict κ are the expensive ones (they
    reach SLE, CD and SD, whose estimator calls and off-tree steps are new work), so the search
    walks the coordinates: the verify threshold with every step offered to the SLM first (κ base 0,
    URC off: cheap), then κ base at that threshold, then τ_req, then the verify threshold again at
    the chosen κ and τ. Each coordinate keeps the value the objective prefers.
    """
    costs = profile.all_llm_costs()
    objective = objective or {"objective": "accuracy-within"}
    taus = TAU_GRID if trust["use_urc"] else (None,)
    verifies = VERIFY_GRID if trust["use_verify"] else (None,)
    tried: dict[tuple[float | None, float, float | None], Point] = {}

    def at(tau: float | None, kappa_base: float, verify: float | None) -> Point:
        key = (tau, kappa_base, verify)
        if key not in tried:
            settings = routing.model_copy(
                update={
                    "use_calibration": False,
                    "use_urc": tau is not None,
                    "tau_req": tau if tau is not None else routing.tau_req,
                    "kappa_base": kappa_base,
                    "use_verify": verify is not None,
                    "verify_threshold": verify if verify is not None else routing.verify_threshold,
                }
            )
            outcomes, _ = replayer.run(HeraPolicy(settings, name="hera"), keys)
            tried[key] = Point(tau, kappa_base, verify, *_summary(outcomes, costs))
            if progress is not None:
                progress(f"calibration: point {len(tried)}: {tried[key].to_json()}")
        return tried[key]

    def best(points: Sequence[Point]) -> Point:
        return choose(points, all_llm_accuracy, objective)

    first = best([at(None, 0.0, v) for v in verifies])
    kappa_point = best([at(None, k, first.verify_threshold) for k in KAPPA_GRID])
    tau_point = best([at(t, kappa_point.kappa_base, kappa_point.verify_threshold) for t in taus])
    best([at(tau_point.tau_req, tau_point.kappa_base, v) for v in verifies])
    return list(tried.values())


@dataclass
class _Split:
    """Where the grid is searched and where the chosen point is held out."""

    profile: ProfileSet
    search_keys: list[str]
    replayer: Replayer
    held_profile: ProfileSet
    held_keys: list[str]
    held_replayer: Replayer


def _split(runtime: Runtime, estimators: Estimators, run_id: uuid.UUID, search_run: uuid.UUID | None) -> _Split:
    """``search_run``'s requests searched and ``run_id``'s validation requests held out; without a
    search run, the validation requests split in two by hash (both halves when one is empty)."""
    from hera_router.training.labels import request_trees, split_by_request
    from hera_router.training.profiling import load_trees
    from hera_router.training.replay import Replayer, load_profile, simulated_extension, simulated_latency

    settings = runtime.settings
    trees = request_trees(load_trees(runtime.sessions, run_id))
    _, validation = split_by_request(trees, settings.estimators.validation_fraction, settings.estimators.split_seed)
    validation_keys = [t.key for t in validation]

    def replayer_for(profile: ProfileSet) -> Replayer:
        return Replayer(
            profile,
            estimators,
            max_steps=settings.routing.max_steps,
            latency=simulated_latency(settings) if profile.simulated else (lambda *_: 0.0),
            extension=simulated_extension(settings) if profile.simulated else None,
        )

    held_profile = load_profile(settings, runtime.sessions, run_id)
    held_replayer = replayer_for(held_profile)
    if search_run is not None:
        profile = load_profile(settings, runtime.sessions, search_run)
        search_keys = [t.key for t in profile.trees]
        return _Split(profile, search_keys, replayer_for(profile), held_profile, validation_keys, held_replayer)
    search_keys = [k for k in validation_keys if _half(k) == 0]
    held_keys = [k for k in validation_keys if _half(k) == 1]
    if not search_keys or not held_keys:
        search_keys = held_keys = list(validation_keys)
    return _Split(held_profile, search_keys, held_replayer, held_profile, held_keys, held_replayer)


def _trust(runtime: Runtime, estimators: Estimators) -> dict[str, bool]:
    """Which optional stages the active estimators' validation metrics let the search turn on."""
    metrics = _active_metrics(runtime)
    divergence = estimators.divergence
    return {
        "use_urc": bool(metrics.get("urc", {}).get("trusted", False)),
        "use_verify": divergence is not None
        and divergence.can_verify
        and bool(metrics.get("divergence", {}).get("verify_trusted", False)),
    }


def _held_out(split: _Split, routing: RoutingSettings, thresholds: dict[str, Any]) -> dict[str, tuple[float, ...]]:
    """The chosen point, All-LLM and the paper-faithful HERA on requests the search never saw."""
    chosen = routing.model_copy(update={**thresholds, "use_calibration": False})
    costs = split.held_profile.all_llm_costs()
    policies: dict[str, Policy] = {
        "hera": HeraPolicy(chosen),
        "all-llm": AllLLM(routing),
        "hera-paper": HeraPolicy(routing.model_copy(update=dict(PAPER))),
    }
    replayer, keys = split.held_replayer, split.held_keys
    return {name: _summary(replayer.run(policy, keys)[0], costs) for name, policy in policies.items()}


def _register(runtime: Runtime, record: dict[str, Any], summary: dict[str, Any], promote: bool) -> int:
    """Store ``record`` as a new ``calibration`` version (promoted unless told not to)."""
    settings = runtime.settings
    staging = new_staging_dir(settings.artifacts, CALIBRATION)
    (staging / CALIBRATION_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    with session_scope(runtime.sessions) as session:
        repository = EstimatorVersionRepository(session)
        row = repository.add_candidate(CALIBRATION, "", metrics=summary, backbone="replay")
        final = publish(staging, settings.artifacts, CALIBRATION, row.version)
        row.path = stored_path(final, settings.data_dir)
        version = row.version
    if promote:
        with session_scope(runtime.sessions) as session:
            EstimatorVersionRepository(session).promote(CALIBRATION, version)
    return version


def _named(values: Sequence[float]) -> dict[str, float]:
    return dict(zip(("accuracy", "slm_share", "cost_ratio"), values, strict=True))


def calibrate(
    runtime: Runtime,
    run_id: uuid.UUID,
    *,
    search_run: uuid.UUID | None = None,
    progress: Progress | None = None,
    promote: bool = True,
) -> dict[str, Any]:
    """Fit the thresholds for the active estimators, register (and by default promote) a
    ``calibration`` version; returns what was stored.

    ``run_id`` is the profile the estimators were trained on: its validation requests (never
    trained on) give the held-out result. ``search_run``, when given, is a profile of further
    requests to search the grid on (``bootstrap`` profiles one); without it the validation
    requests are split in two by hash, one half searched and the other held out.
    """
    from hera_router.estimators.loader import RegistryEstimatorSource

    settings = runtime.settings
    source = RegistryEstimatorSource(runtime, reload_interval_s=1e9)
    estimators = source()
    if estimators is None:
        raise RuntimeError(f"cannot calibrate: no complete set of active estimators ({source.load_error or 'none'})")
    split = _split(runtime, estimators, run_id, search_run)
    trust = _trust(runtime, estimators)
    all_llm_outcomes = split.replayer.run(AllLLM(settings.routing), split.search_keys)[0]
    all_llm = _summary(all_llm_outcomes, split.profile.all_llm_costs())
    if progress is not None:
        sizes = f"{len(split.search_keys)} search / {len(split.held_keys)} held-out requests"
        progress(f"calibration: {sizes}; trust {trust}")
    objective = settings.calibration.model_dump()
    points = search(
        split.replayer,
        estimators,
        split.profile,
        split.search_keys,
        routing=settings.routing,
        trust=trust,
        objective=objective,
        all_llm_accuracy=all_llm[0],
        progress=progress,
    )
    best = choose(points, all_llm[0], objective)
    thresholds = best.thresholds(trust)
    held = _held_out(split, settings.routing, thresholds)
    runs = {"profile_run": str(run_id), "search_run": str(search_run) if search_run is not None else None}
    record = {
        "for_versions": dict(estimators.versions),
        "thresholds": thresholds,
        "trust": trust,
        "objective": objective,
        **runs,
        "search": {
            "requests": len(split.search_keys),
            "all_llm": _named(all_llm),
            "chosen": best.to_json(),
            "points": [p.to_json() for p in points],
        },
        "held_out": {"requests": len(split.held_keys), **{name: _named(values) for name, values in held.items()}},
    }
    summary = {
        "metric": "held_out_accuracy",
        "held_out_accuracy": held["hera"][0],
        "baseline_held_out_accuracy": held["all-llm"][0],
        "held_out_slm_share": held["hera"][1],
        "held_out_cost_ratio": held["hera"][2],
        **thresholds,
        "for_versions": dict(estimators.versions),
        **runs,
    }
    version = _register(runtime, record, summary, promote)
    if progress is not None:
        progress(
            f"calibration v{version}: {thresholds}; held out: HERA {held['hera'][0]:.1%} accuracy at "
            f"{held['hera'][1]:.1%} SLM (All-LLM {held['all-llm'][0]:.1%}) — SIMULATED"
            if split.profile.simulated
            else f"calibration v{version}: {thresholds}"
        )
    return {**record, "version": version}


def recalibrate(runtime: Runtime, *, progress: Progress | None = None) -> str:
    """After a promotion: re-activate the calibration fitted for exactly the active versions (a
    rollback), or fit a new one on the profile the latest calibration used. Returns what happened."""
    from hera_router.db.enums import EstimatorStatus

    with session_scope(runtime.sessions) as session:
        repository = EstimatorVersionRepository(session)
        rows = repository.list_all()
        # Estimators only: the calibration itself and the cold-start threshold are fitted, not trained.
        active = {
            r.name: str(r.version) for r in rows if r.status is EstimatorStatus.ACTIVE and r.name in ESTIMATOR_NAMES
        }
        calibrations = [r for r in rows if r.name == CALIBRATION]
        fitted = next((r for r in calibrations if r.metrics.get("for_versions") == active), None)
        if fitted is not None:
            if fitted.status is not EstimatorStatus.ACTIVE:
                repository.promote(CALIBRATION, fitted.version)
            return f"calibration v{fitted.version} (fitted for these versions) is active"
        last = max(calibrations, key=lambda r: r.version, default=None)
        profile_run = last.metrics.get("profile_run") if last is not None else None
    if not profile_run:
        return "no calibration to start from: routers use the settings' thresholds (the paper's constants)"
    if progress is not None:
        progress(f"calibrating the thresholds for {active} on profile run {profile_run} ...")
    result = calibrate(runtime, uuid.UUID(str(profile_run)), progress=progress)
    return f"calibration v{result['version']} is active: {result['thresholds']}"


def _active_metrics(runtime: Runtime) -> dict[str, dict[str, Any]]:
    with session_scope(runtime.sessions) as session:
        return {row.name: dict(row.metrics or {}) for row in EstimatorVersionRepository(session).all_active()}


def calibration_path(path: str | Path) -> Path:
    return Path(path) / CALIBRATION_FILE
