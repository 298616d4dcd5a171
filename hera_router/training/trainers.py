"""``hera-router train NAME --profile RUN``: one estimator from one profiling run, end to end.

Load the run's trees → split by request (validation share from the settings) → labels → train
into a staging folder → load the staged artefact the way a router would and measure it on the
validation split (with its trivial baseline) → register a candidate version, move the artefact
to ``<artifacts>/estimators/<name>/v<version>`` → close the ``training_runs`` row. Promotion is a
separate, explicit step (``hera-router promote``), except in ``bootstrap``.
"""

from __future__ import annotations

import random
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hera_router.backends.base import ModelBackend
from hera_router.db.enums import Executor, RunStatus
from hera_router.estimators import ESTIMATOR_NAMES
from hera_router.estimators.artifacts import folder_of, new_staging_dir, publish, stored_path, write_meta
from hera_router.estimators.loader import load_estimator
from hera_router.estimators.similarity import Embedder, shared_embedder
from hera_router.routing.estimators import ChainState
from hera_router.training import evaluation
from hera_router.training.labels import (
    RequestTree,
    decomposition_examples,
    distance_examples,
    divergence_examples,
    request_trees,
    split_by_request,
    subtask_pairs,
    urc_targets,
)
from hera_router.training.priority import yields_cpu
from hera_router.training.profiling import load_trees

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.db.runtime import Runtime

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class TrainResult:
    name: str
    version: int
    path: Path
    variant: str
    backbone: str
    metrics: Mapping[str, Any]


@dataclass(slots=True)
class TrainingContext:
    """What training and evaluating an estimator needs besides the trees."""

    settings: Settings
    embedder: Embedder
    backends: Mapping[Executor, ModelBackend] | None = None
    progress: Progress | None = None

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message)

    predictors: tuple[Any, Any] | None = None
    runtime: Runtime | None = None

    def active_predictors(self) -> tuple[Any, Any] | None:
        """The active SP_SLM and SP_LLM, loaded once (None when either has no active version)."""
        if self.predictors is None and self.runtime is not None:
            from hera_router.db.repositories import EstimatorVersionRepository
            from hera_router.db.session import session_scope

            with session_scope(self.runtime.sessions) as session:
                active = {r.name: (r.version, r.path) for r in EstimatorVersionRepository(session).all_active()}
            if "sp_slm" in active and "sp_llm" in active:
                slm, llm = (
                    load_estimator(name, folder_of(path, self.settings), str(version), self.settings, self.embedder)
                    for name, (version, path) in ((n, active[n]) for n in ("sp_slm", "sp_llm"))
                )
                self.predictors = (slm, llm)
        return self.predictors

    def sim_backends(self) -> Mapping[Executor, ModelBackend]:
        if self.backends is None:
            from hera_router.backends.registry import create_backend

            self.backends = {
                Executor.SLM: create_backend(self.settings, "edge"),
                Executor.LLM: create_backend(self.settings, "cloud"),
            }
        return self.backends


def _sample(items: Sequence[Any], limit: int, seed: int) -> list[Any]:
    if len(items) <= limit:
        return list(items)
    return random.Random(seed).sample(list(items), limit)


def _variant(name: str, settings: Settings, variant: str | None) -> str:
    if variant is not None:
        return variant
    if name in {"sp_slm", "sp_llm"}:
        return settings.estimators.sp_variant
    if name == "sd":
        return settings.estimators.sd_variant
    return "default"


def fit(  # noqa: PLR0911 - one return per estimator and variant
    name: str, variant: str, train: Sequence[RequestTree], context: TrainingContext, out_dir: Path
) -> dict[str, Any]:
    """Train ``name`` on ``train`` into ``out_dir``; returns the artefact's metadata."""
    from hera_router.estimators import decomposer, distance, predictor, request_scorer

    settings = context.settings.estimators
    similarity = context.embedder.similarity
    if name == "urc" and settings.urc_variant == request_scorer.LOGISTIC_VARIANT:
        examples = urc_targets(train, similarity)
        meta = request_scorer.train_logistic_scorer(
            [r for r, _ in examples],
            [t for _, t in examples],
            context.embedder,
            threshold=settings.similarity_threshold,
            out_dir=out_dir,
        )
        meta["train_mean"], meta["train_majority_decision"] = evaluation.urc_baseline(
            [t for _, t in examples], context.settings.routing.tau_req
        )
        return meta
    if name == "urc":
        examples = urc_targets(train, similarity)
        meta = request_scorer.train_request_scorer(
            [r for r, _ in examples],
            [t for _, t in examples],
            settings=settings,
            out_dir=out_dir,
            progress=context.progress,
        )
        meta["train_mean"], meta["train_majority_decision"] = evaluation.urc_baseline(
            [t for _, t in examples], context.settings.routing.tau_req
        )
        return meta
    if name == "dp":
        rows = distance_examples(train, similarity, settings.similarity_threshold)
        meta = distance.train_distance_predictor(
            [r.subtask for r in rows],
            [r.seq for r in rows],
            [r.distance for r in rows],
            settings=settings,
            out_dir=out_dir,
            progress=context.progress,
        )
        meta["train_majority_class"] = evaluation.dp_majority([r.distance for r in rows], settings.max_distance)
        return meta
    if name in {"sp_slm", "sp_llm"}:
        pairs = subtask_pairs(train, Executor.SLM if name == "sp_slm" else Executor.LLM)
        if variant == predictor.EMBEDDING_VARIANT:
            return predictor.train_embedding_predictor(
                pairs, context.embedder, settings=settings, out_dir=out_dir, progress=context.progress
            )
        if variant == predictor.GENERATIVE_VARIANT:
            return predictor.train_generative_predictor(
                _sample(pairs, settings.generator_max_examples, settings.train_seed),
                settings=settings,
                artifacts=context.settings.artifacts,
                out_dir=out_dir,
                progress=context.progress,
            )
    if name == "sd":
        if variant == decomposer.PROMPTED_VARIANT:
            edge = context.settings.edge
            return {"variant": variant, "backbone": f"{edge.backend}:{edge.model}"}
        if variant == decomposer.TRAINED_VARIANT:
            return decomposer.train_decomposer(
                _sample(decomposition_examples(train), settings.generator_max_examples, settings.train_seed),
                settings=settings,
                artifacts=context.settings.artifacts,
                out_dir=out_dir,
                progress=context.progress,
            )
    if name == "divergence":
        from hera_router.estimators.divergence import train_divergence

        nodes = divergence_examples(train)
        context.say(f"divergence: {len(nodes)} profiled nodes with both models' continuations")
        return train_divergence(nodes, sp_cosines(context, [e.state for e in nodes]), context.embedder, out_dir=out_dir)
    raise ValueError(f"unknown estimator {name!r} or variant {variant!r}; estimators: {', '.join(ESTIMATOR_NAMES)}")


def sp_cosines(context: TrainingContext, states: Sequence[ChainState]) -> list[float]:
    """cos(SP_SLM(state), SP_LLM(state)) with the active subtask predictors (0 where none are
    active): the paper's SSE similarity, which the divergence heads take as one feature."""
    predictors = context.active_predictors()
    if predictors is None or not states:
        return [0.0] * len(states)
    slm, llm = predictors
    return [
        float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
        for a, b in zip(_next_embeddings(slm, states, context), _next_embeddings(llm, states, context), strict=True)
    ]


def _next_embeddings(component: Any, states: Sequence[ChainState], context: TrainingContext) -> Any:
    from hera_router.estimators.predictor import EmbeddingSubtaskPredictor

    if isinstance(component, EmbeddingSubtaskPredictor):
        current = context.embedder.embed_many([s.current for s in states])
        request = context.embedder.embed_many([s.request for s in states])
        return component.step(current, request, [s.seq for s in states])
    return np.stack([component.roll(state, 1)[0] for state in states])


def evaluate(
    name: str, component: Any, meta: Mapping[str, Any], trees: Sequence[RequestTree], context: TrainingContext
) -> dict[str, Any]:
    """Validation metrics of a loaded estimator on ``trees`` (with its trivial baseline)."""
    from hera_router.estimators.decomposer import TrainedDecomposer
    from hera_router.estimators.predictor import EmbeddingSubtaskPredictor, GenerativeSubtaskPredictor

    settings = context.settings.estimators
    similarity = context.embedder.similarity
    slow = meta.get("variant") in {"generative", "trained"}
    limit = settings.slow_validation_examples if slow else 1_000_000
    if name == "urc":
        examples = urc_targets(trees, similarity)
        predictions = component.score_many([r for r, _ in examples])
        return evaluation.urc_metrics(
            list(predictions),
            [t for _, t in examples],
            float(meta["train_mean"]),
            bool(meta["train_majority_decision"]),
            context.settings.routing.tau_req,
        )
    if name == "dp":
        rows = distance_examples(trees, similarity, settings.similarity_threshold)
        predicted = component.predict_many([r.subtask for r in rows], [r.seq for r in rows])
        return evaluation.dp_metrics(
            predicted, [r.distance for r in rows], int(meta["train_majority_class"]), settings.max_distance
        )
    if name in {"sp_slm", "sp_llm"}:
        pairs = _sample(subtask_pairs(trees, Executor.SLM if name == "sp_slm" else Executor.LLM), limit, 1)
        if isinstance(component, EmbeddingSubtaskPredictor):
            current = context.embedder.embed_many([p.state.current for p in pairs])
            request = context.embedder.embed_many([p.state.request for p in pairs])
            predicted = component.step(current, request, [p.state.seq for p in pairs])
        elif isinstance(component, GenerativeSubtaskPredictor):
            predicted = context.embedder.embed_many(component.next_texts([p.state for p in pairs]))
        else:
            predicted = np.stack([component.roll(p.state, 1)[0] for p in pairs])
        return evaluation.sp_metrics(predicted, pairs, context.embedder, settings.similarity_threshold)
    if name == "divergence":
        nodes = divergence_examples(trees)
        return evaluation.divergence_metrics(component, nodes, sp_cosines(context, [e.state for e in nodes]), meta)
    if name == "sd":
        decompositions_wanted = _sample(decomposition_examples(trees), limit, 1)
        items = [(e.request, e.subtask, e.expected_next) for e in decompositions_wanted]
        if isinstance(component, TrainedDecomposer):
            decompositions = component.decompose_many(items)
        else:
            decompositions = [component.decompose(*item) for item in items]
        oracle = evaluation.SseOracle(context.sim_backends(), context.embedder, context.settings.routing)
        return evaluation.sd_metrics(decompositions, decompositions_wanted, oracle)
    raise ValueError(f"unknown estimator {name!r}")


def _data_window(runtime: Runtime, run_id: uuid.UUID) -> tuple[datetime | None, datetime | None]:
    from sqlalchemy import func, select

    from hera_router.db.models import ProfileNode
    from hera_router.db.session import session_scope

    with session_scope(runtime.sessions) as session:
        first, last = session.execute(
            select(func.min(ProfileNode.created_at), func.max(ProfileNode.created_at)).where(
                ProfileNode.run_id == run_id
            )
        ).one()
    return first, last


@yields_cpu
def train_estimator(
    runtime: Runtime,
    name: str,
    run_id: uuid.UUID,
    *,
    variant: str | None = None,
    scheduled_for: datetime | None = None,
    progress: Progress | None = None,
    backends: Mapping[Executor, ModelBackend] | None = None,
    trees: Sequence[RequestTree] | None = None,
) -> TrainResult | None:
    """Train, validate and register one estimator; None if this scheduled run was already claimed.

    Raises ValueError for an unknown name/variant or a run without trees. A failure after the
    training run was claimed marks it failed (with the error) before re-raising.
    """
    from hera_router.db.base import utcnow
    from hera_router.db.repositories import EstimatorVersionRepository, TrainingRunRepository
    from hera_router.db.session import session_scope

    if name not in ESTIMATOR_NAMES:
        raise ValueError(f"unknown estimator {name!r}; choose one of {', '.join(ESTIMATOR_NAMES)}")
    settings = runtime.settings
    variant = _variant(name, settings, variant)
    if trees is None:
        trees = request_trees(load_trees(runtime.sessions, run_id))
    if not trees:
        raise ValueError(f"profile run {run_id} has no profiled requests; run `hera-router profile` first")
    with session_scope(runtime.sessions) as session:
        claimed = TrainingRunRepository(session).start_run(name, scheduled_for or utcnow())
        training_run_id = claimed.id if claimed is not None else None
    if training_run_id is None:
        return None
    context = TrainingContext(
        settings, shared_embedder(settings.estimators.similarity_cache_size), backends, progress, runtime=runtime
    )
    staging = new_staging_dir(settings.artifacts, name)
    try:
        train, validation = split_by_request(
            trees, settings.estimators.validation_fraction, settings.estimators.split_seed
        )
        context.say(f"{name} ({variant}): {len(train)} training / {len(validation)} validation requests")
        meta = fit(name, variant, train, context, staging)
        meta.update(name=name, profile_run=str(run_id), hyperparameters=settings.estimators.model_dump())
        write_meta(staging, meta)
        component = load_estimator(name, staging, "candidate", settings, context.embedder)
        metrics = evaluate(name, component, meta, validation, context)
        metrics.update(
            variant=meta["variant"],
            profile_run=str(run_id),
            n_train_requests=len(train),
            n_validation_requests=len(validation),
        )
        meta["metrics"] = metrics
        write_meta(staging, meta)
        start, end = _data_window(runtime, run_id)
        with session_scope(runtime.sessions) as session:
            row = EstimatorVersionRepository(session).add_candidate(
                name,
                "",
                metrics=metrics,
                backbone=str(meta["backbone"]),
                data_window_start=start,
                data_window_end=end,
            )
            final = publish(staging, settings.artifacts, name, row.version)
            row.path = stored_path(final, settings.data_dir)
            version = row.version
            TrainingRunRepository(session).finish(
                training_run_id, RunStatus.SUCCEEDED, metrics={**metrics, "version": version}
            )
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        with session_scope(runtime.sessions) as session:
            TrainingRunRepository(session).finish(
                training_run_id, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"
            )
        raise
    context.say(f"{name} v{version}: {evaluation.headline(metrics)}")
    return TrainResult(name, version, final, str(meta["variant"]), str(meta["backbone"]), metrics)


def evaluate_version(
    runtime: Runtime,
    name: str,
    version: int,
    run_id: uuid.UUID,
    *,
    backends: Mapping[Executor, ModelBackend] | None = None,
) -> dict[str, Any]:
    """Metrics of a registered version on every request of another profile run (e.g. an unseen family)."""
    from hera_router.db.repositories import EstimatorVersionRepository
    from hera_router.db.session import session_scope
    from hera_router.estimators.artifacts import read_meta

    with session_scope(runtime.sessions) as session:
        row = EstimatorVersionRepository(session).get(name, version)
        if row is None:
            raise LookupError(f"estimator {name!r} has no version {version}")
        path = folder_of(row.path, runtime.settings)
    settings = runtime.settings
    context = TrainingContext(
        settings, shared_embedder(settings.estimators.similarity_cache_size), backends, runtime=runtime
    )
    component = load_estimator(name, path, str(version), settings, context.embedder)
    trees = request_trees(load_trees(runtime.sessions, run_id))
    return evaluate(name, component, read_meta(path), trees, context)
