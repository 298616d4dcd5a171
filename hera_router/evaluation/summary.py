"""What a finished set of requests achieved: accuracy, SLM share, cost against the cloud, latency.

Used by ``hera-router run`` and ``hera-router submit`` after their progress bar. Definitions follow
the HERA paper (§5.2): SLM share is the share of a request's executed steps that ran on
the SLM, averaged over requests; cost is compared with what the same tokens would have cost on the
cloud model (an estimate: an all-cloud run would take its own number of steps).
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.table import Table
from sqlalchemy.orm import Session

from hera_router.agent.scoring import score
from hera_router.config import Settings
from hera_router.db.enums import RequestStatus
from hera_router.db.models import Request
from hera_router.db.repositories import ModelCallRepository, RequestRepository
from hera_router.db.repositories.plan_nodes import PlanNodeRepository

DEFAULT_METRIC = "entity"


@dataclass(frozen=True, slots=True)
class RunSummary:
    requests: int
    succeeded: int
    failed: int
    cancelled: int
    accuracy: float | None
    """Mean score over requests with a gold answer (unfinished ones score 0); None without gold."""
    scored: int
    slm_share: float
    steps_per_request: float
    cost_usd: float
    cloud_only_cost_usd: float
    """The same tokens priced at the cloud model's rates."""
    latency_p50_s: float
    latency_p95_s: float

    @property
    def cost_ratio(self) -> float | None:
        """Cost relative to the all-cloud estimate (All-LLM = 1.0)."""
        return self.cost_usd / self.cloud_only_cost_usd if self.cloud_only_cost_usd > 0 else None


def _score(request: Request) -> float:
    if request.gold_answer is None:
        return 0.0
    metric = str(request.meta.get("metric", DEFAULT_METRIC))
    answer = request.final_answer if request.status is RequestStatus.SUCCEEDED else None
    return score(metric, answer, request.gold_answer)


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summarise_run(session: Session, settings: Settings, request_ids: Sequence[uuid.UUID]) -> RunSummary:
    requests = RequestRepository(session).list_by_ids(request_ids)
    # A graph request's calls are mostly its nodes' (requests of their own; docs/graphs.md).
    node_ids = PlanNodeRepository(session).node_request_ids(request_ids)
    tokens = ModelCallRepository(session).token_totals([*request_ids, *node_ids])
    status_count = {status: sum(r.status is status for r in requests) for status in RequestStatus}
    with_gold = [r for r in requests if r.gold_answer is not None]
    shares = [r.slm_steps / (r.slm_steps + r.llm_steps) for r in requests if r.slm_steps + r.llm_steps]
    cloud_price = settings.price_of(settings.cloud.model)
    tokens_in = sum(pair[0] for pair in tokens.values())
    tokens_out = sum(pair[1] for pair in tokens.values())
    latencies = [(r.updated_at - r.created_at).total_seconds() for r in requests if r.status is RequestStatus.SUCCEEDED]
    return RunSummary(
        requests=len(requests),
        succeeded=status_count[RequestStatus.SUCCEEDED],
        failed=status_count[RequestStatus.FAILED],
        cancelled=status_count[RequestStatus.CANCELLED],
        accuracy=sum(_score(r) for r in with_gold) / len(with_gold) if with_gold else None,
        scored=len(with_gold),
        slm_share=statistics.fmean(shares) if shares else 0.0,
        steps_per_request=statistics.fmean([r.slm_steps + r.llm_steps for r in requests]) if requests else 0.0,
        cost_usd=sum(r.cost_usd for r in requests),
        cloud_only_cost_usd=(tokens_in * cloud_price.input_per_mtok + tokens_out * cloud_price.output_per_mtok) / 1e6,
        latency_p50_s=_percentile(latencies, 50),
        latency_p95_s=_percentile(latencies, 95),
    )


def summary_table(summaries: Sequence[tuple[str, RunSummary]], *, title: str) -> Table:
    """Summaries side by side, one column each (what the CLI prints after its progress bar)."""
    table = Table(title=title, title_justify="left")
    table.add_column("", style="bold")
    for name, _ in summaries:
        table.add_column(name, justify="right")

    def row(label: str, render: Callable[[RunSummary], str]) -> None:
        table.add_row(label, *(render(summary) for _, summary in summaries))

    row("requests", lambda s: str(s.requests))
    row("succeeded / failed / cancelled", lambda s: f"{s.succeeded} / {s.failed} / {s.cancelled}")
    if any(s.accuracy is not None for _, s in summaries):
        row("accuracy", lambda s: f"{s.accuracy:.1%}" if s.accuracy is not None else "no gold")
    row("SLM share of steps", lambda s: f"{s.slm_share:.1%}")
    row("steps per request", lambda s: f"{s.steps_per_request:.2f}")
    row("cost (USD)", lambda s: f"{s.cost_usd:.4f}")
    row("same tokens all on the cloud (USD)", lambda s: f"{s.cloud_only_cost_usd:.4f}")
    row("cost ratio", lambda s: f"{s.cost_ratio:.2f}" if s.cost_ratio is not None else "-")
    row("latency p50 / p95 (s)", lambda s: f"{s.latency_p50_s:.2f} / {s.latency_p95_s:.2f}")
    return table
