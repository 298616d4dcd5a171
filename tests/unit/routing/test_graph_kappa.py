"""κ for the steps of plan nodes (``graph_kappa``); chains keep the paper's position κ."""

from __future__ import annotations

from hera_router.config import RoutingSettings
from hera_router.routing.base import GraphPosition, RoutingContext
from hera_router.routing.hera import graph_kappa, kappa


def _context(seq: int, graph: GraphPosition | None) -> RoutingContext:
    return RoutingContext(request_id="r", request="q", current="c", seq=seq, graph=graph)


def test_a_chain_step_keeps_its_position_kappa_whatever_the_setting() -> None:
    for mode in ("position", "depth"):
        settings = RoutingSettings(graph_kappa=mode)
        assert [graph_kappa(_context(seq, None), settings) for seq in range(7)] == [
            kappa(seq, settings) for seq in range(7)
        ]


def test_depth_kappa_counts_the_steps_whose_results_flow_into_the_node() -> None:
    final = GraphPosition(depth_steps=4, level=1, to_final=0, descendants=0, nodes=3)
    assert graph_kappa(_context(0, final), RoutingSettings(graph_kappa="position")) == kappa(0, RoutingSettings())
    assert graph_kappa(_context(0, final), RoutingSettings(graph_kappa="depth")) == kappa(4, RoutingSettings())
    assert graph_kappa(_context(0, final), RoutingSettings(graph_kappa="depth")) > kappa(0, RoutingSettings())


def test_the_position_is_read_from_a_node_requests_metadata() -> None:
    meta = {"graph": {"depth_steps": 3, "level": 1, "to_final": 0, "descendants": 0, "nodes": 3}}
    assert GraphPosition.from_meta(meta) == GraphPosition(3, 1, 0, 0, 3)
    assert GraphPosition.from_meta({"metric": "entity"}) is None
    assert GraphPosition.from_meta({"graph": {"depth_steps": "x"}}) is None
    assert GraphPosition.from_meta(None) is None
