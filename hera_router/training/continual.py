"""The nightly retraining: shadow labels → LoRA update from the active version → gate → promotion.

One run per (estimator, schedule slot). For each estimator in ``HERA_CONTINUAL__ESTIMATORS``
(``dp`` by default):

1. Claim the ``training_runs`` row (model, slot); a second beat, a redelivered message or a second
   click for the same slot finds it claimed and does nothing.
2. Take the advisory lock ``hera:retrain:<name>`` (Postgres; ``db/locks.py``); if another run of
   the estimator holds it, this slot is recorded as skipped. Under the lock, runs of the estimator
   still marked running and silent past ``stale_after_s`` have no live trainer: they are failed.
3. A heartbeat thread writes the stage and progress to the run row every ``heartbeat_interval_s``.
4. Labels: the shadow trees finished after the active version's data window (newest
   ``max_shadow_requests``). Fewer than ``min_labels`` labels ends the run as skipped, with the
   count in the reason.
5. Split by request (the estimators' validation fraction and seed); train the candidate from the
   active version's adapter (DP and URC: a LoRA update; SPs: retrained on the new pairs).
6. Evaluate candidate and active on the same held-out slice with the same metric; the candidate is
   promoted if its headline metric is not below the active one's by more than ``tolerance``,
   otherwise registered as a candidate carrying the gate's reason.
7. Registration, promotion and closing the run commit in one transaction, after the artefact is
   complete on disk: a crash before it leaves a failed (or, until reaped, running) run and no
   version; never a half-promoted model.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.db.enums import Executor, RunStatus
from hera_router.estimators.artifacts import folder_of
from hera_router.training.priority import yields_cpu

if TYPE_CHECKING:
    from hera_router.db.models import EstimatorVersion
    from hera_router.db.runtime import Runtime
    from hera_router.training.labels import RequestTree
    from hera_router.training.trainers import TrainingContext

log = logging.getLogger(__name__)

CONTINUAL_ESTIMATORS = ("dp", "urc", "sp_slm", "sp_llm")
ABANDONED = "the trainer stopped without finishing this run (killed or lost); nothing was registered"

Progress = Callable[[str], None]
LabelTransform = Callable[[list[Any]], list[Any]]
"""Applied to a DP/URC candidate's training labels; tests use it to make a candidate worse."""


# --- schedule slots --------------------------------------------------------------------------


def cron_fields(schedule: str) -> dict[str, str]:
    """``"0 2 * * *"`` → the keyword arguments of ``celery.schedules.crontab``."""
    minute, hour, day_of_month, month_of_year, day_of_week = schedule.split()
    return {
        "minute": minute,
        "hour": hour,
        "day_of_month": day_of_month,
        "month_of_year": month_of_year,
        "day_of_week": day_of_week,
    }


def last_slot(schedule: str, now: datetime) -> datetime:
    """The latest time at or before ``now`` (UTC, whole minutes) that ``schedule`` fires.

    What a beat-triggered run uses as its slot: two beats firing at 02:00:00.1 and 02:00:00.7, or a
    message redelivered at 02:40, all land on 02:00 and therefore on the same ``training_runs`` row.
    """
    from celery.schedules import crontab

    cron = crontab(**cron_fields(schedule))
    t = now.astimezone(UTC).replace(second=0, microsecond=0)
    for _ in range(366 * 24 * 60):
        # celery numbers weekdays from Sunday = 0; Python from Monday = 0
        if (
            t.month not in cron.month_of_year
            or t.day not in cron.day_of_month
            or (t.weekday() + 1) % 7 not in cron.day_of_week
        ):
            t = t.replace(hour=0, minute=0) - timedelta(minutes=1)
        elif t.hour not in cron.hour:
            t = t.replace(minute=0) - timedelta(minutes=1)
        elif t.minute not in cron.minute:
            t -= timedelta(minutes=1)
        else:
            return t
    raise ValueError(f"the schedule {schedule!r} does not fire within a year before {now.isoformat()}")


def manual_slot(now: datetime) -> datetime:
    """The slot of an on-demand run: the current minute (a double click makes one run)."""
    return now.astimezone(UTC).replace(second=0, microsecond=0)


# --- outcome ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrainOutcome:
    name: str
    slot: datetime
    status: str
    """``promoted``, ``rejected``, ``skipped``, ``failed`` or ``claimed`` (the slot already had a run)."""
    run_id: uuid.UUID | None = None
    version: int | None = None
    reason: str | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        version = f" v{self.version}" if self.version is not None else ""
        reason = f": {self.reason}" if self.reason else ""
        return f"{self.name}{version} {self.status} (slot {self.slot.isoformat()}){reason}"


class RunLostError(RuntimeError):
    """The run row stopped being ``running`` under the trainer (failed by a reaper)."""


class _Heartbeat:
    """Writes the run's progress (stage, counts, last message) and heartbeat on a timer."""

    def __init__(self, runtime: Runtime, run_id: uuid.UUID, interval_s: float, state: dict[str, Any]) -> None:
        self.runtime = runtime
        self.run_id = run_id
        self.interval_s = interval_s
        self.state = state
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval_s + 5)

    def update(self, **values: Any) -> None:
        with self._lock:
            self.state.update(values)
        self.beat()

    def beat(self) -> None:
        from hera_router.db.repositories import TrainingRunRepository
        from hera_router.db.session import session_scope

        with self._lock:
            progress = dict(self.state)
        try:
            with session_scope(self.runtime.sessions) as session:
                alive = TrainingRunRepository(session).record_progress(self.run_id, progress)
        except Exception:  # a missed beat is not worth killing an hour of training for
            log.warning("training run %s: heartbeat failed", self.run_id, exc_info=True)
            return
        if not alive:
            self.lost.set()

    def check(self) -> None:
        if self.lost.is_set():
            raise RunLostError(f"training run {self.run_id} is no longer running (marked failed by a reaper)")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()


# --- the run ---------------------------------------------------------------------------------


@yields_cpu
def retrain(
    runtime: Runtime,
    *,
    slot: datetime,
    names: Sequence[str] | None = None,
    trigger: str = "manual",
    progress: Progress | None = None,
    label_transform: LabelTransform | None = None,
) -> list[RetrainOutcome]:
    """Run the continual update of each estimator in ``names`` (default: the settings') for ``slot``."""
    wanted = list(names) if names else list(runtime.settings.continual.estimators)
    unknown = [name for name in wanted if name not in CONTINUAL_ESTIMATORS]
    if unknown:
        raise ValueError(
            f"cannot retrain {', '.join(unknown)} continually; choose from {', '.join(CONTINUAL_ESTIMATORS)}"
        )
    outcomes = [
        retrain_estimator(runtime, name, slot, trigger=trigger, progress=progress, label_transform=label_transform)
        for name in wanted
    ]
    if any(outcome.status == "promoted" for outcome in outcomes):
        # The thresholds belong to a set of versions: fit them for the new set. A failure here
        # leaves routers on the settings' thresholds (the calibration no longer matches), not broken.
        from hera_router.training.calibration import recalibrate

        try:
            said = recalibrate(runtime, progress=progress)
        except Exception:
            log.exception("retrain: the new estimator set could not be calibrated")
        else:
            if progress is not None:
                progress(said)
    return outcomes


def lock_name(name: str) -> str:
    return f"hera:retrain:{name}"


def retrain_estimator(
    runtime: Runtime,
    name: str,
    slot: datetime,
    *,
    trigger: str = "manual",
    progress: Progress | None = None,
    label_transform: LabelTransform | None = None,
) -> RetrainOutcome:
    from hera_router.db.base import utcnow
    from hera_router.db.locks import try_advisory_lock
    from hera_router.db.repositories import TrainingRunRepository
    from hera_router.db.session import session_scope

    settings = runtime.settings.continual
    with session_scope(runtime.sessions) as session:
        claimed = TrainingRunRepository(session).start_run(name, slot)
        run_id = claimed.id if claimed is not None else None
    if run_id is None:
        return RetrainOutcome(name, slot, "claimed", reason="this estimator already has a run for this slot")
    state: dict[str, Any] = {"trigger": trigger, "stage": "waiting for the lock"}
    with try_advisory_lock(runtime.engine, lock_name(name)) as held:
        if not held:
            reason = f"another retraining of {name} is running (it holds the lock {lock_name(name)!r})"
            with session_scope(runtime.sessions) as session:
                TrainingRunRepository(session).finish(
                    run_id, RunStatus.SKIPPED, metrics={**state, "stage": "skipped", "reason": reason}, error=reason
                )
            return RetrainOutcome(name, slot, "skipped", run_id, reason=reason)
        with session_scope(runtime.sessions) as session:
            reaped = TrainingRunRepository(session).fail_running(
                name,
                ABANDONED,
                except_id=run_id,
                silent_since=utcnow() - timedelta(seconds=settings.stale_after_s),
            )
        if reaped:
            log.warning("%s: marked %d abandoned run(s) failed: %s", name, len(reaped), reaped)
        state["stage"] = "loading labels"
        with _Heartbeat(runtime, run_id, settings.heartbeat_interval_s, state) as heartbeat:
            try:
                return _run(runtime, name, slot, run_id, heartbeat, progress, label_transform)
            except BaseException as exc:
                with session_scope(runtime.sessions) as session:
                    TrainingRunRepository(session).finish(
                        run_id,
                        RunStatus.FAILED,
                        metrics={**heartbeat.state, "stage": "failed"},
                        error=f"{type(exc).__name__}: {exc}",
                    )
                raise
    raise AssertionError("unreachable")  # pragma: no cover - both branches above return or raise


def _finish_skipped(runtime: Runtime, run_id: uuid.UUID, state: Mapping[str, Any], reason: str) -> None:
    from hera_router.db.repositories import TrainingRunRepository
    from hera_router.db.session import session_scope

    with session_scope(runtime.sessions) as session:
        TrainingRunRepository(session).finish(
            run_id, RunStatus.SKIPPED, metrics={**state, "stage": "skipped", "reason": reason}, error=reason
        )


def shadow_trees(
    runtime: Runtime, after: datetime | None, limit: int
) -> tuple[list[RequestTree], datetime | None, datetime | None]:
    """The shadow trees finished after ``after`` (newest ``limit``) and their (first, last) finish time."""
    from hera_router.db.repositories import ShadowRunRepository
    from hera_router.db.session import session_scope
    from hera_router.training.labels import request_trees
    from hera_router.training.profiling import TreeNode, tree_node

    trees: dict[str, list[TreeNode]] = {}
    with session_scope(runtime.sessions) as session:
        repository = ShadowRunRepository(session)
        runs = repository.labelled_since(after, limit)
        finished = [run.finished_at for run in runs if run.finished_at is not None]
        for row in repository.nodes([run.profile_run_id for run in runs if run.profile_run_id is not None]):
            trees.setdefault(row.request_key, []).append(tree_node(row))
    return request_trees(trees), min(finished, default=None), max(finished, default=None)


def count_labels(name: str, trees: Sequence[RequestTree], context: TrainingContext) -> int:
    """How many training examples of ``name`` the trees hold (DP: LLM subtasks with a distance)."""
    from hera_router.training.labels import distance_examples, subtask_pairs

    if name == "dp":
        estimators = context.settings.estimators
        return len(distance_examples(trees, context.embedder.similarity, estimators.similarity_threshold))
    if name == "urc":
        return len(trees)
    return len(subtask_pairs(trees, Executor.SLM if name == "sp_slm" else Executor.LLM))


def _warm_start(name: str, active: EstimatorVersion, meta: Mapping[str, Any], context: TrainingContext) -> bool:
    """Whether the active version's adapter can seed the candidate (same backbone, same classes)."""
    from hera_router.estimators import distance, request_scorer

    estimators = context.settings.estimators
    if name == "dp":
        return (
            meta.get("variant") == distance.VARIANT
            and meta.get("backbone") == estimators.encoder
            and int(meta.get("max_distance", -1)) == estimators.max_distance
            and (folder_of(active.path, context.settings) / "adapter").is_dir()
        )
    if name == "urc":
        return (
            meta.get("variant") == request_scorer.VARIANT
            and meta.get("backbone") == estimators.encoder
            and (folder_of(active.path, context.settings) / "adapter").is_dir()
        )
    return False


def train_candidate(
    name: str,
    train: Sequence[RequestTree],
    context: TrainingContext,
    out_dir: Path,
    *,
    init_from: Path | None,
    label_transform: LabelTransform | None = None,
) -> dict[str, Any]:
    """Train ``name``'s candidate into ``out_dir`` (from ``init_from``'s adapter when given)."""
    from hera_router.estimators import distance, request_scorer
    from hera_router.estimators.encoder import train_encoder_head
    from hera_router.training import evaluation
    from hera_router.training.labels import distance_examples, urc_targets
    from hera_router.training.trainers import fit

    settings = context.settings
    estimators = settings.estimators
    if init_from is not None:
        continual = settings.continual
        estimators = estimators.model_copy(
            update={
                "encoder_epochs": continual.update_epochs,
                "encoder_min_steps": continual.update_min_steps,
                "encoder_learning_rate": continual.update_learning_rate,
            }
        )
    transform = label_transform or (lambda labels: labels)
    if name == "dp":
        rows = distance_examples(train, context.embedder.similarity, estimators.similarity_threshold)
        labels = transform([distance.distance_class(r.distance, estimators.max_distance) for r in rows])
        train_encoder_head(
            estimators.encoder,
            [distance.distance_input(r.subtask, r.seq) for r in rows],
            labels,
            num_labels=estimators.max_distance + 2,
            settings=estimators,
            out_dir=out_dir,
            progress=context.progress,
            balance_classes=True,
            init_from=init_from,
        )
        return {
            "variant": distance.VARIANT,
            "backbone": estimators.encoder,
            "max_distance": estimators.max_distance,
            "train_majority_class": evaluation.dp_majority([r.distance for r in rows], estimators.max_distance),
        }
    if name == "urc" and estimators.urc_variant == request_scorer.VARIANT:
        examples = urc_targets(train, context.embedder.similarity)
        targets = transform([t for _, t in examples])
        train_encoder_head(
            estimators.encoder,
            [r for r, _ in examples],
            targets,
            num_labels=1,
            settings=estimators,
            out_dir=out_dir,
            progress=context.progress,
            init_from=init_from,
        )
        mean, majority = evaluation.urc_baseline([t for _, t in examples], settings.routing.tau_req)
        return {
            "variant": request_scorer.VARIANT,
            "backbone": estimators.encoder,
            "train_mean": mean,
            "train_majority_decision": majority,
        }
    variant = estimators.sp_variant
    return fit(name, variant, train, context, out_dir)


@dataclass(frozen=True, slots=True)
class _Labels:
    trees: list[RequestTree]
    train: list[RequestTree]
    validation: list[RequestTree]
    count: int
    held_out: int
    first: datetime | None
    last: datetime | None


def _gather(
    name: str, active: EstimatorVersion, runtime: Runtime, context: TrainingContext, heartbeat: _Heartbeat
) -> _Labels | str:
    """The new labels and their split, or the reason there are not enough."""
    from hera_router.training.labels import split_by_request

    continual, estimators = runtime.settings.continual, runtime.settings.estimators
    window_end = active.data_window_end
    trees, first, last = shadow_trees(runtime, window_end, continual.max_shadow_requests)
    count = count_labels(name, trees, context)
    since = window_end.isoformat() if window_end is not None else "the beginning"
    heartbeat.update(stage="labels", labels=count, shadow_requests=len(trees), active_version=active.version)
    if count < continual.min_labels:
        return (
            f"{count} new {name} labels from {len(trees)} shadow requests since {since}; at least "
            f"{continual.min_labels} are needed (HERA_CONTINUAL__MIN_LABELS)"
        )
    train, validation = split_by_request(trees, estimators.validation_fraction, estimators.split_seed)
    held_out = count_labels(name, validation, context)
    if held_out == 0 or not train:
        return f"{count} new {name} labels, but the split left {held_out} held out; nothing to compare on"
    return _Labels(trees, train, validation, count, held_out, first, last)


def _train_and_compare(
    name: str,
    labels: _Labels,
    context: TrainingContext,
    staging: Path,
    current: tuple[EstimatorVersion, Path, dict[str, Any]],
    warm: bool,
    label_transform: LabelTransform | None,
    heartbeat: _Heartbeat,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Train a candidate in ``staging`` from the shadow labels (warm from the active version when
    ``warm``) and gate it against the active version on the held-out labels: (meta, gate, the
    active version's metrics)."""
    from hera_router.estimators.artifacts import write_meta

    settings = context.settings
    active, active_path, active_meta = current
    meta = train_candidate(
        name,
        labels.train,
        context,
        staging,
        init_from=active_path if warm else None,
        label_transform=label_transform,
    )
    meta.update(
        name=name,
        warm_start_from=active.version if warm else None,
        data="shadow",
        hyperparameters={**settings.estimators.model_dump(), "continual": settings.continual.model_dump()},
    )
    write_meta(staging, meta)
    heartbeat.check()
    heartbeat.update(stage="evaluating")
    gate, candidate_metrics, active_metrics = compare(
        name, staging, meta, active, active_meta, labels.validation, context, labels.held_out
    )
    candidate_metrics.update(
        variant=meta["variant"],
        data="shadow",
        labels=labels.count,
        n_train_requests=len(labels.train),
        n_validation_requests=len(labels.validation),
        warm_start_from=meta["warm_start_from"],
        gate=gate,
    )
    meta["metrics"] = candidate_metrics
    write_meta(staging, meta)
    heartbeat.check()
    return meta, gate, active_metrics


def _run(
    runtime: Runtime,
    name: str,
    slot: datetime,
    run_id: uuid.UUID,
    heartbeat: _Heartbeat,
    progress: Progress | None,
    label_transform: LabelTransform | None,
) -> RetrainOutcome:
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators.artifacts import new_staging_dir, read_meta
    from hera_router.estimators.similarity import shared_embedder
    from hera_router.training.trainers import TrainingContext

    settings = runtime.settings

    def say(message: str) -> None:
        heartbeat.update(progress=message)
        if progress is not None:
            progress(f"{name}: {message}")

    context = TrainingContext(settings, shared_embedder(settings.estimators.similarity_cache_size), progress=say)
    with session_scope(runtime.sessions) as session:
        active = EstimatorVersionRepository(session).active(name)
        if active is not None:
            session.expunge(active)
    labels = (
        _gather(name, active, runtime, context, heartbeat)
        if active is not None
        else f"{name} has no active version to update; run `hera-router bootstrap` or promote one first"
    )
    if isinstance(labels, str):
        _finish_skipped(runtime, run_id, heartbeat.state, labels)
        return RetrainOutcome(name, slot, "skipped", run_id, reason=labels, metrics=dict(heartbeat.state))
    assert active is not None
    active_path = folder_of(active.path, runtime.settings)
    active_meta = read_meta(active_path)
    warm = _warm_start(name, active, active_meta, context)
    heartbeat.update(
        stage="training", train_requests=len(labels.train), validation_requests=len(labels.validation), warm=warm
    )
    origin = f"v{active.version}" if warm else "scratch"
    say(f"{labels.count} labels from {len(labels.trees)} shadow requests; training from {origin}")
    staging = new_staging_dir(settings.artifacts, name)
    try:
        meta, gate, active_metrics = _train_and_compare(
            name, labels, context, staging, (active, active_path, active_meta), warm, label_transform, heartbeat
        )
        heartbeat.update(stage="registering")
        version, summary = _register(runtime, name, run_id, staging, meta, gate, active_metrics, labels, heartbeat)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(str(gate["reason"]))
    return RetrainOutcome(
        name, slot, str(gate["decision"]), run_id, version=version, reason=str(gate["reason"]), metrics=summary
    )


def _register(
    runtime: Runtime,
    name: str,
    run_id: uuid.UUID,
    staging: Path,
    meta: Mapping[str, Any],
    gate: Mapping[str, Any],
    active_metrics: Mapping[str, Any],
    labels: _Labels,
    heartbeat: _Heartbeat,
) -> tuple[int, dict[str, Any]]:
    """Register the candidate, promote it if the gate passed and close the run: one transaction."""
    from hera_router.db.repositories import EstimatorVersionRepository, TrainingRunRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators.artifacts import publish, stored_path

    with session_scope(runtime.sessions) as session:
        versions = EstimatorVersionRepository(session)
        row = versions.add_candidate(
            name,
            "",
            metrics=meta["metrics"],
            backbone=str(meta["backbone"]),
            data_window_start=labels.first,
            data_window_end=labels.last,
        )
        final = publish(staging, runtime.settings.artifacts, name, row.version)
        row.path = stored_path(final, runtime.settings.data_dir)
        version = row.version
        if gate["decision"] == "promoted":
            versions.promote(name, version)
        summary = {
            **heartbeat.state,
            **gate,
            "stage": "done",
            "version": version,
            "candidate_metrics": meta["metrics"],
            "active_metrics": dict(active_metrics),
        }
        # Closing the run is part of the same transaction: if a reaper failed it meanwhile,
        # nothing of this attempt (version row, promotion) is committed.
        if not TrainingRunRepository(session).finish(run_id, RunStatus.SUCCEEDED, metrics=summary):
            raise RunLostError(f"training run {run_id} was closed by someone else; not registering")
    return version, summary


def compare(
    name: str,
    staging: Path,
    meta: Mapping[str, Any],
    active: EstimatorVersion,
    active_meta: Mapping[str, Any],
    validation: Sequence[RequestTree],
    context: TrainingContext,
    held_out: int,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The gate: (decision, candidate metrics, active metrics) on the same held-out trees."""
    from hera_router.estimators.loader import load_estimator
    from hera_router.training.evaluation import headline
    from hera_router.training.trainers import evaluate

    settings = context.settings
    tolerance = settings.continual.tolerance
    candidate = load_estimator(name, staging, "candidate", settings, context.embedder)
    candidate_metrics = evaluate(name, candidate, meta, validation, context)
    current = load_estimator(name, folder_of(active.path, settings), str(active.version), settings, context.embedder)
    active_metrics = evaluate(name, current, active_meta, validation, context)
    metric, candidate_value, _ = headline(candidate_metrics)
    _, active_value, _ = headline(active_metrics)
    promote = candidate_value >= active_value - tolerance
    verdict = (
        "promoted"
        if promote
        else f"worse by {active_value - candidate_value:.3f}, more than the tolerance {tolerance:g} "
        "(HERA_CONTINUAL__TOLERANCE); kept as a candidate"
    )
    reason = (
        f"candidate {metric} {candidate_value:.3f} vs active v{active.version} {active_value:.3f} "
        f"on the same {held_out} held-out labels: {verdict}"
    )
    gate = {
        "decision": "promoted" if promote else "rejected",
        "reason": reason,
        "metric": metric,
        "candidate": candidate_value,
        "active": active_value,
        "active_version": active.version,
        "tolerance": tolerance,
    }
    return gate, candidate_metrics, active_metrics


# --- abandoned runs --------------------------------------------------------------------------


def reap_abandoned_runs(runtime: Runtime, names: Sequence[str] = CONTINUAL_ESTIMATORS) -> list[uuid.UUID]:
    """Mark failed the runs whose trainer died: still ``running``, silent for ``stale_after_s`` and,
    on Postgres, with nobody holding the estimator's advisory lock. Returns their ids."""
    from hera_router.db.base import utcnow
    from hera_router.db.locks import try_advisory_lock
    from hera_router.db.repositories import TrainingRunRepository
    from hera_router.db.session import session_scope

    failed: list[uuid.UUID] = []
    silent_since = utcnow() - timedelta(seconds=runtime.settings.continual.stale_after_s)
    for name in names:
        with try_advisory_lock(runtime.engine, lock_name(name)) as held:
            if not held:
                continue  # a live trainer of this estimator: its own runs are not abandoned
            with session_scope(runtime.sessions) as session:
                failed += TrainingRunRepository(session).fail_running(name, ABANDONED, silent_since=silent_since)
    return failed


def describe_run(row: Any) -> tuple[str, ...]:
    """A ``training_runs`` row as table cells: estimator, slot, status, trigger, duration, version,
    candidate and active headline metric, reason (or error)."""
    metrics: Mapping[str, Any] = row.metrics or {}
    took = "-"
    if row.started_at is not None and row.finished_at is not None:
        took = f"{(row.finished_at - row.started_at).total_seconds():.0f} s"
    elif row.status is RunStatus.RUNNING:
        took = f"running ({metrics.get('stage', '?')})"
    version = metrics.get("version")
    decision = metrics.get("decision")
    name = metrics.get("metric") or "-"

    def value(key: str) -> str:
        number = metrics.get(key)
        return f"{name} {float(number):.3f}" if isinstance(number, int | float) else "-"

    status = f"{row.status.value}" + (f" ({decision})" if decision else "")
    return (
        row.model_name,
        row.scheduled_for.strftime("%Y-%m-%d %H:%M"),
        status,
        str(metrics.get("trigger", "-")),
        took,
        f"v{version}" if version is not None else "-",
        value("candidate"),
        value("active"),
        str(row.error or metrics.get("reason") or "-"),
    )
