"""Estimators read off the profiled trees themselves: what HERA does with *perfect* predictors.

An evaluation reference, not something a router can deploy (it needs the profile of the very
request it routes). Comparing ``hera`` with the trained estimators against ``hera`` with these
separates the routing logic from the quality of the estimators — the "estimators' effect".

* URC: 1.0 when the request's All-SLM and All-LLM chains end with the same answer (normalised),
  else 0.0 — the matched/unmatched label the paper's URC is trained to predict.
* SP_SLM / SP_LLM: the embeddings of the subtasks the profiled tree holds after the current node
  along the SLM (resp. LLM) children, i.e. what each model *actually* writes next. A roll past
  the end of the chain (or a node the tree does not hold) predicts the zero vector (never similar).
* DP: ∞ (SLE never passes; CD still finds the convergence points); SD: never splits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hera_router.agent.scoring import normalise_answer
from hera_router.db.enums import Executor
from hera_router.routing.estimators import ChainState, Estimators, Vector
from hera_router.training.replay import Node, ProfileSet, ReplayTree

StateKey = tuple[str, tuple[tuple[str, str], ...], str, int]
VERSION = "profiled"


def _key(state: ChainState) -> StateKey:
    return (state.request, tuple((s, r) for s, r in state.history), state.current, state.seq)


class _Index:
    """(request, history, current, seq) → the tree node, rebuilt when a replay extended a tree."""

    def __init__(self, profile: ProfileSet) -> None:
        self.trees = {tree.request: tree for tree in profile.trees}
        self.nodes: dict[StateKey, Node] = {}
        self.sizes: dict[str, int] = {}

    def _build(self, tree: ReplayTree) -> None:
        stack: list[tuple[Node, tuple[tuple[str, str], ...]]] = [(tree.root, ())]
        size = 0
        while stack:
            node, history = stack.pop()
            size += 1
            self.nodes[(tree.request, history, node.text, node.depth)] = node
            for child in node.children.values():
                stack.append((child, (*history, (node.text, child.output or ""))))
        self.sizes[tree.request] = size

    def find(self, state: ChainState) -> Node | None:
        key = _key(state)
        found = self.nodes.get(key)
        tree = self.trees.get(state.request)
        if found is None and tree is not None:
            self._build(tree)  # new request, or the tree grew (extended steps)
            found = self.nodes.get(key)
        return found


class _TreePredictor:
    def __init__(self, index: _Index, executor: Executor, embed: Callable[[str], Vector], dim: int) -> None:
        self.index, self.executor, self.embed, self.dim = index, executor, embed, dim
        self.version = VERSION

    def roll(self, state: ChainState, steps: int) -> list[Vector]:
        node = self.index.find(state)
        out: list[Vector] = []
        for _ in range(steps):
            child = node.children.get(self.executor) if node is not None else None
            if child is None or not child.text:
                out.append(np.zeros(self.dim, dtype=np.float32))
                node = None
                continue
            out.append(self.embed(child.text))
            node = child
        return out


class _MatchedScorer:
    def __init__(self, profile: ProfileSet) -> None:
        self.version = VERSION
        self.matched: dict[str, float] = {}
        for tree in profile.trees:
            answers = [_final(tree.root, e) for e in (Executor.SLM, Executor.LLM)]
            same = answers[0] is not None and answers[0] == answers[1]
            self.matched[tree.request] = 1.0 if same else 0.0

    def score(self, request: str) -> float:
        return self.matched.get(request, 0.0)


def _final(node: Node, executor: Executor) -> str | None:
    while executor in node.children:
        node = node.children[executor]
    return normalise_answer(node.text) if node.is_final else None


class _Infinite:
    version = VERSION

    def predict(self, subtask: str, seq: int) -> int | None:
        return None


class _NoSplit:
    version = VERSION

    def decompose(self, request: str, subtask: str, expected_next: str | None) -> list[str]:
        return []


def profiled_estimators(profile: ProfileSet, embed: Callable[[str], Vector], dim: int) -> Estimators:
    """The reference bundle over ``profile`` (``embed``: the SBERT embedder of the similarity tests)."""
    index = _Index(profile)
    return Estimators(
        urc=_MatchedScorer(profile),
        sp_slm=_TreePredictor(index, Executor.SLM, embed, dim),
        sp_llm=_TreePredictor(index, Executor.LLM, embed, dim),
        dp=_Infinite(),
        sd=_NoSplit(),
        versions=dict.fromkeys(("urc", "sp_slm", "sp_llm", "dp", "sd"), VERSION),
    )
