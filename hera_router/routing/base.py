"""The routing interface: one method, pure, no Celery and no SQLAlchemy.

A policy looks at where a request stands (the request, the (subtask, result) history, the subtask
about to run and its sequence id) and returns a :class:`Decision`: which model runs it, why
(branch), for how many steps (span), and every score it computed on the way. The router task
records the decision verbatim; the execution task honours its span and its decomposition.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hera_router.config import RoutingSettings
from hera_router.db.enums import Executor  # a plain StrEnum: no SQLAlchemy import
from hera_router.routing.coldstart import ColdStart
from hera_router.routing.estimators import Estimators

__all__ = [
    "Decision",
    "Executor",
    "MissingEstimatorsError",
    "Policy",
    "PolicyBase",
    "PolicyFactory",
    "PolicyUnavailableError",
    "RoutingContext",
    "Step",
    "UnknownPolicyError",
    "Verdict",
]


@dataclass(frozen=True, slots=True)
class Step:
    """One executed step of a request's chain."""

    subtask: str
    result: str
    executor: Executor
    confidence: float | None = None
    """Mean token log-probability of ``result`` on the model that ran it; None where not recorded."""


@dataclass(frozen=True, slots=True)
class GraphPosition:
    """Where the node a step belongs to sits in its plan (``agent/plan.py``, ``pipeline/graph.py``)."""

    depth_steps: int
    """Model steps on the longest dependency path before the node's first step."""
    level: int = 0
    to_final: int = 0
    """Nodes between this one and the final node (0: this node gives the final answer)."""
    descendants: int = 0
    nodes: int = 1

    @classmethod
    def from_meta(cls, meta: Mapping[str, object] | None) -> GraphPosition | None:
        """The position a node request's metadata records (``graph``), or None for a chain."""
        shape = (meta or {}).get("graph")
        if not isinstance(shape, Mapping):
            return None
        try:
            fields = ("depth_steps", "level", "to_final", "descendants", "nodes")
            return cls(**{name: int(shape[name]) for name in fields})
        except (KeyError, TypeError, ValueError):
            return None


@dataclass(frozen=True, slots=True)
class RoutingContext:
    """Where a request stands when its next subtask must be routed."""

    request_id: str
    request: str
    """The root request text (ST_0)."""
    current: str
    """The subtask about to run; equals ``request`` at seq 0."""
    seq: int
    """Sequence id of ``current`` (0 for the root request)."""
    history: Sequence[Step] = ()
    max_steps: int = 15
    graph: GraphPosition | None = None
    """Set when the request is a node of a plan with dependencies; None for a chain."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy decided for the current subtask, with everything needed to audit it."""

    executor: Executor
    branch: str
    """urc | sse | sle | cd | sd | fallback, cold-start-verify (``hera`` without estimators), or the
    baseline's name."""
    policy: str
    span: int = 1
    """Steps this decision covers, the current one included (SLE/CD/URC cover several)."""
    parts: tuple[str, ...] = ()
    """SD: the sub-subtasks the SLM runs in place of the current step."""
    part_executors: tuple[Executor, ...] = ()
    """Partial SD: who runs each part (empty: the SLM runs them all, the paper's all-or-nothing)."""
    scores: Mapping[str, float] = field(default_factory=dict)
    kappa: float | None = None
    estimator_versions: Mapping[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    reason: str | None = None
    """Why the decision overrides the policy's choice (a budget, a cost cap, a latency budget)."""
    rung: int | None = None
    """Ladder policies: the rung of ``HERA_MODELS`` (0: the cheapest) the step starts on; the
    pipeline resolves it to a tier, and ``executor`` to that tier's role. None: a two-role decision."""

    def __post_init__(self) -> None:
        if self.span < 1:
            raise ValueError(f"a decision covers at least the current step (span={self.span})")
        if self.parts and self.executor is not Executor.SLM:
            raise ValueError("only the SLM runs decomposed sub-subtasks")


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verify stage's judgement of a step the SLM ran: keep its result, or re-run it on the LLM."""

    accept: bool
    score: float
    """P(the SLM's result agrees with what the LLM would give), from the step and its logprobs."""
    threshold: float
    policy: str
    estimator_versions: Mapping[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    reason: str | None = None
    """Why a rejected result goes to the LLM, when the policy words it itself (cold start)."""


class Policy(Protocol):
    """A routing policy. Implementations must be deterministic given their inputs and seed.

    ``estimators`` are the learned estimators of the calling process (None where none are loaded);
    policies that need them raise :class:`MissingEstimatorsError` without them.

    Every member below is what the pipeline and the replays call; :class:`PolicyBase` gives each
    hook but :meth:`decide` its do-nothing default, so a policy states only what it does.
    """

    name: str
    needs_estimators: bool
    """Whether the policy reads the learned estimators: a router loads them only for such a policy."""
    verifies: bool
    """Whether its steps below the top rung go to the verify stage (:meth:`verify`, :meth:`judge`)."""
    cold_starts: bool
    """Whether it routes without estimators (:meth:`decide_cold`) instead of failing."""

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision: ...

    def decide_cold(self, context: RoutingContext, cold_start: ColdStart | None = None) -> Decision:
        """The decision without estimators (``cold_starts``), under the cold-start threshold in force
        (None: the policy's configured one)."""
        ...

    def verify(
        self,
        context: RoutingContext,
        confidence: float | None,
        estimators: Estimators | None,
        cold_start: ColdStart | None = None,
    ) -> Verdict | None:
        """Judge the SLM's result of ``context.current`` in the two-tier case; None: keep it."""
        ...

    def judge(self, rung: int, rungs: int, confidence: float | None) -> Verdict | None:
        """Judge rung ``rung``'s result (of ``rungs``, ``HERA_MODELS``); None: keep it."""
        ...

    def check_tiers(self, tiers: Sequence[str]) -> None:
        """Told ``HERA_MODELS``' tier names once, when the process builds the policy."""
        ...


class PolicyBase:
    """The hooks of :class:`Policy` with their defaults: no estimators, no verify stage, no cold
    start, every model tier acceptable. A policy subclasses it and writes :meth:`decide`."""

    name: str = ""
    needs_estimators: bool = False
    verifies: bool = False
    cold_starts: bool = False

    def decide(self, context: RoutingContext, estimators: Estimators | None = None) -> Decision:
        raise NotImplementedError

    def decide_cold(self, context: RoutingContext, cold_start: ColdStart | None = None) -> Decision:
        raise MissingEstimatorsError(self.name)

    def verify(
        self,
        context: RoutingContext,
        confidence: float | None,
        estimators: Estimators | None,
        cold_start: ColdStart | None = None,
    ) -> Verdict | None:
        return None

    def judge(self, rung: int, rungs: int, confidence: float | None) -> Verdict | None:
        return None

    def check_tiers(self, tiers: Sequence[str]) -> None:
        return None


class PolicyUnavailableError(RuntimeError):
    """The policy cannot decide for this request (missing estimators or signals); the request
    fails with this message instead of being retried forever."""


class MissingEstimatorsError(PolicyUnavailableError):
    def __init__(self, policy: str) -> None:
        super().__init__(
            f"policy {policy!r} needs trained estimators and none are active; "
            "run `hera-router bootstrap` (or train and promote them) first"
        )


PolicyFactory = Callable[[RoutingSettings], Policy]


class UnknownPolicyError(LookupError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown routing policy {name!r}; known policies: {', '.join(sorted(known))}")
        self.name = name
