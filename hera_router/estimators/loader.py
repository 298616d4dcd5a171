"""Loading estimator versions, and the per-process source of the active ones for the router.

A router process calls :class:`RegistryEstimatorSource` on every routing decision (the pipeline's
``estimator_source``). It loads the active versions lazily on first use, in the process that
will use them (after the prefork fork, never at import), keeps them, and re-reads the registry
at most every ``HERA_ESTIMATORS__RELOAD_INTERVAL_S`` seconds: a ``hera-router promote`` reaches
every router within that interval, without a restart. While one thread loads a new version the
others keep routing with the previous bundle.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hera_router.estimators import CALIBRATION, ESTIMATOR_NAMES, REQUIRED_ESTIMATORS
from hera_router.estimators.artifacts import folder_of, read_meta
from hera_router.estimators.batching import BatchedEmbedder, micro_batched
from hera_router.estimators.similarity import Embedder, onnx_folder, shared_embedder
from hera_router.estimators.threads import apply_torch_threads
from hera_router.routing.estimators import Estimators

if TYPE_CHECKING:
    from hera_router.config import Settings
    from hera_router.db.runtime import Runtime

log = logging.getLogger(__name__)

Clock = Callable[[], float]
CALIBRATION_FILE = "calibration.json"


def load_estimator(  # noqa: PLR0911 - one return per estimator and variant
    name: str, folder: Path, version: str, settings: Settings, embedder: Embedder | None = None
) -> Any:
    """The estimator saved in ``folder`` (any variant), ready to serve. Raises on unknown variants."""
    from hera_router.estimators import decomposer, distance, predictor, request_scorer

    meta = read_meta(folder)
    variant = meta.get("variant")
    if name == "urc":
        if variant == request_scorer.LOGISTIC_VARIANT:
            return request_scorer.LogisticRequestScorer.load(
                folder, meta, version, embedder or shared_embedder(settings.estimators.similarity_cache_size)
            )
        return request_scorer.TrainedRequestScorer.load(folder, meta, version, embedder)
    if name == "dp":
        return distance.TrainedDistancePredictor.load(folder, meta, version, embedder)
    if name == "divergence":
        from hera_router.estimators.divergence import DivergenceEstimator

        embedder = embedder or shared_embedder(settings.estimators.similarity_cache_size)
        return DivergenceEstimator.load(folder, meta, version, embedder)
    if name in {"sp_slm", "sp_llm"}:
        embedder = embedder or shared_embedder(settings.estimators.similarity_cache_size)
        if variant == predictor.EMBEDDING_VARIANT:
            return predictor.EmbeddingSubtaskPredictor.load(folder, meta, version, embedder)
        if variant == predictor.GENERATIVE_VARIANT:
            return predictor.GenerativeSubtaskPredictor.load(folder, meta, version, embedder, settings.artifacts)
    if name == "sd":
        if variant == decomposer.PROMPTED_VARIANT:
            from hera_router.backends.registry import create_backend

            return decomposer.PromptedDecomposer(create_backend(settings, "edge"), version)
        if variant == decomposer.TRAINED_VARIANT:
            return decomposer.TrainedDecomposer.load(folder, meta, version, settings.artifacts)
    raise ValueError(f"{folder}: estimator {name!r} has unknown variant {variant!r}")


def matching_calibration(row: tuple[int, str] | None, versions: Mapping[str, str]) -> dict[str, Any] | None:
    """The active calibration's thresholds if they were fitted for exactly ``versions``, else None.

    A calibration belongs to one set of estimator versions: after a promotion or a rollback that
    changed any of them, its thresholds no longer describe what the estimators output, so the
    policy falls back to the settings (the paper's constants) until the set is calibrated again
    (``hera-router promote`` does that; ``hera-router estimators`` shows which applies).
    """
    if row is None:
        return None
    version, path = row
    try:
        data: dict[str, Any] = json.loads((Path(path) / CALIBRATION_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("calibration v%s: cannot read %s; routing with the settings' thresholds", version, path)
        return None
    fitted_for = {str(k): str(v) for k, v in data.get("for_versions", {}).items()}
    if fitted_for != dict(versions):
        log.warning(
            "calibration v%s was fitted for %s, not the active %s; routing with the settings' thresholds",
            version,
            fitted_for,
            dict(versions),
        )
        return None
    return {**data.get("thresholds", {}), "version": str(version)}


class RegistryEstimatorSource:
    """Zero-argument callable returning the active :class:`Estimators`, or None until all five
    (urc, sp_slm, sp_llm, dp, sd) have an active version. Thread-safe.

    Lazy: constructing one reads and loads nothing; the first call in a process does (and sets
    the process's torch threads). A caller that asks only for policies that need estimators
    (``Policy.needs_estimators``, ``routing/base.py``) never pays for them otherwise.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        reload_interval_s: float | None = None,
        clock: Clock = time.monotonic,
        loader: Callable[[str, Path, str, Settings], Any] | None = None,
    ) -> None:
        self.runtime = runtime
        self.reload_interval_s = (
            reload_interval_s if reload_interval_s is not None else runtime.settings.estimators.reload_interval_s
        )
        self._clock = clock
        self._loader = loader or self._load
        self._embedder: Embedder | None = None
        self.load_error: str | None = None
        """The last failure to load the active versions (None once a load succeeds)."""
        self._state_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._bundle: Estimators | None = None
        self._loaded: dict[tuple[str, int], Any] = {}
        self._checked_at: float | None = None
        self._pid = os.getpid()
        self.torch_threads: int | None = None
        """torch's thread count in this process once the source has looked for estimators."""

    def __call__(self) -> Estimators | None:
        with self._state_lock:
            if self._pid != os.getpid():
                # Inherited through a fork: models and their thread pools must be reloaded here.
                self._bundle, self._loaded, self._checked_at, self._pid = None, {}, None, os.getpid()
                self._embedder = None
            due = self._checked_at is None or self._clock() - self._checked_at >= self.reload_interval_s
            bundle = self._bundle
        if not due:
            return bundle
        # First load: wait for it. Later re-checks: one thread reloads, the others keep routing
        # with the bundle they have.
        if not self._reload_lock.acquire(blocking=bundle is None):
            return bundle
        try:
            return self._refresh()
        finally:
            self._reload_lock.release()

    def _refresh(self) -> Estimators | None:
        from hera_router.db.repositories import EstimatorVersionRepository
        from hera_router.db.session import session_scope

        # Before the first model is loaded in this process: a router's forward passes must not
        # fight its sibling processes for the cores (estimators/threads.py).
        self.torch_threads = apply_torch_threads(self.runtime.settings.estimators.torch_threads)

        with session_scope(self.runtime.sessions) as session:
            rows = EstimatorVersionRepository(session).all_active()
            settings = self.runtime.settings
            active = {row.name: (row.version, str(folder_of(row.path, settings))) for row in rows}
        wanted = {name: active[name] for name in ESTIMATOR_NAMES if name in active}
        bundle: Estimators | None = None
        if all(name in wanted for name in REQUIRED_ESTIMATORS):
            try:
                loaded = {name: self._component(name, version, Path(path)) for name, (version, path) in wanted.items()}
            except Exception as exc:
                # A broken artefact (missing, corrupt, written by an incompatible release) must not
                # crash every routing task: keep routing with what this process has (None on a
                # first load: HERA requests then fail with a message, baselines are unaffected),
                # and try again after the interval.
                log.exception("estimators: cannot load the active versions %s", wanted)
                with self._state_lock:
                    self.load_error = f"{type(exc).__name__}: {exc}"
                    self._checked_at = self._clock()
                    return self._bundle
            versions = {name: str(version) for name, (version, _) in wanted.items()}
            embedder = self._shared_embedder()
            bundle = Estimators(
                urc=loaded["urc"],
                sp_slm=loaded["sp_slm"],
                sp_llm=loaded["sp_llm"],
                dp=loaded["dp"],
                sd=loaded["sd"],
                versions=versions,
                divergence=loaded.get("divergence"),
                embed=embedder.embed,
                calibration=matching_calibration(active.get(CALIBRATION), versions),
            )
            batch = self.runtime.settings.estimators
            if batch.micro_batch_max > 1:
                bundle = micro_batched(
                    bundle, max_batch=batch.micro_batch_max, max_wait_s=batch.micro_batch_wait_ms / 1000
                )
        with self._state_lock:
            self.load_error = None
            if bundle is None or bundle.versions != (self._bundle.versions if self._bundle else None):
                log.info("estimators: %s", dict(bundle.versions) if bundle else "none active")
            # Drop versions no longer served so their memory goes with them.
            served = {(name, version) for name, (version, _) in wanted.items()}
            self._loaded = {key: value for key, value in self._loaded.items() if key in served}
            self._bundle = bundle
            self._checked_at = self._clock()
        return bundle

    def _load(self, name: str, folder: Path, version: str, settings: Settings) -> Any:
        return load_estimator(name, folder, version, settings, self._shared_embedder())

    def _shared_embedder(self) -> Embedder:
        """The process's SBERT model, batched across routing threads unless micro-batching is off."""
        with self._state_lock:
            if self._embedder is None:
                estimators = self.runtime.settings.estimators
                embedder = shared_embedder(estimators.similarity_cache_size)
                if estimators.encoder_runtime == "onnx":
                    embedder.use_onnx(onnx_folder(self.runtime.settings), estimators.torch_threads)
                if estimators.micro_batch_max > 1:
                    # As many concurrent forward passes as the cores hold at this thread count
                    # (estimators/batching.py: one lane at one thread leaves cores idle).
                    threads = estimators.torch_threads or os.cpu_count() or 1
                    embedder = BatchedEmbedder(
                        embedder,
                        max_batch=estimators.micro_batch_max,
                        max_wait_s=estimators.micro_batch_wait_ms / 1000,
                        lanes=max(1, (os.cpu_count() or 1) // threads),
                    )
                self._embedder = embedder
            return self._embedder

    def _component(self, name: str, version: int, path: Path) -> Any:
        key = (name, version)
        with self._state_lock:
            if key in self._loaded:
                return self._loaded[key]
        component = self._loader(name, path, str(version), self.runtime.settings)
        with self._state_lock:
            self._loaded[key] = component
        return component
