"""The simulated world: a seed, the knowledge graph it implies, and the task families over it.

How a model finds the task behind a prompt: it parses the request text back into a chain with the
family grammars (both families write requests that their own parser inverts exactly), and the
lookup family resolves entity names in the graph rebuilt from the world seed. No index of
generated requests is kept, so a request file written yesterday, or by hand following the same
grammar, is understood by any process with the same seed; a request written for another seed, or
not in any grammar, is "unknown" and gets a well-formed "cannot parse" answer.
"""

from __future__ import annotations

from hera_router.simulator.arithmetic import ArithmeticFamily
from hera_router.simulator.facts import FactsFamily
from hera_router.simulator.graph import CombineInstance, GraphFamily, GraphInstance
from hera_router.simulator.lookup import LookupFamily, build_graph
from hera_router.simulator.presets import WorldShape
from hera_router.simulator.tasks import TaskFamily, TaskInstance

FAMILIES = ("lookup", "arithmetic")


class World:
    """Thread-safe after construction: the caches only ever gain entries equal to what they'd recompute."""

    def __init__(self, seed: int, shape: WorldShape) -> None:
        self.seed = seed
        self.graph = build_graph(seed)
        lookup = LookupFamily(self.graph, shape.lookup_min_hops, shape.lookup_max_hops)
        arithmetic = ArithmeticFamily(shape.arithmetic_min_ops, shape.arithmetic_max_ops)
        # Not in FAMILIES either: grounded lookups for real models (simulator/facts.py).
        facts = FactsFamily(self.graph, shape.facts_min_hops, shape.facts_max_hops, shape.facts_distractors)
        self.families: dict[str, TaskFamily] = {"lookup": lookup, "arithmetic": arithmetic, "facts": facts}
        # Not a chain family (not in FAMILIES, so "mixed" request sets are what they were): its
        # parts are requests of the two chain families; see simulator/graph.py.
        self.graphs = GraphFamily(lookup, arithmetic)
        self._requests: dict[str, TaskInstance | None] = {}
        self._graph_requests: dict[str, GraphInstance | CombineInstance | None] = {}

    def family(self, name: str) -> TaskFamily:
        try:
            return self.families[name]
        except KeyError:
            raise ValueError(f"unknown task family {name!r}; known: {', '.join(self.families)}") from None

    def parse_request(self, text: str) -> TaskInstance | None:
        """The task a request text states, or ``None`` when no family's grammar recognises it."""
        if text in self._requests:
            return self._requests[text]
        instance = None
        for family in self.families.values():
            instance = family.parse_request(text)
            if instance is not None:
                break
        if len(self._requests) > 50_000:
            self._requests.clear()
        self._requests[text] = instance
        return instance

    def parse_graph(self, text: str) -> GraphInstance | CombineInstance | None:
        """A graph request (which plans) or a combining node's request; ``None`` for anything else."""
        if text in self._graph_requests:
            return self._graph_requests[text]
        found: GraphInstance | CombineInstance | None = self.graphs.parse_request(text)
        if found is None:
            found = self.graphs.parse_combine(text)
        if len(self._graph_requests) > 50_000:
            self._graph_requests.clear()
        self._graph_requests[text] = found
        return found
