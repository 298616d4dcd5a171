"""Labels from profiling trees: S-L distances, URC targets, SP pairs and SD examples.

Everything here is pure: trees in, examples out. Similarity is passed in (SBERT in production,
anything in unit tests) so the labelling rules can be tested on hand-built chains.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from hera_router.agent.format import parse_decomposition
from hera_router.agent.scoring import extract_number, normalise_answer
from hera_router.db.enums import Executor
from hera_router.estimators.decomposer import DecompositionExample
from hera_router.estimators.divergence import DivergenceExample
from hera_router.estimators.predictor import SubtaskPair
from hera_router.routing.estimators import ChainState
from hera_router.training.profiling import DECOMPOSITION, ROOT, STEP, TreeNode, llm_chain, slm_chain

Similarity = Callable[[str, str], float]
_BARE_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def sl_distances(
    llm_subtasks: Sequence[str], slm_subtasks: Sequence[str], similarity: Similarity, threshold: float = 0.7
) -> list[int | None]:
    """S-L distance of each LLM subtask (the HERA paper, §2, Observation 4); None is ∞.

    The extra SLM subtasks needed, counted since the previous match, before an SLM subtask is
    similar (cosine > ``threshold``) to the LLM one. Figure 5: L1↔S2, L2↔S5, L3↔S6 gives 1, 2, 0.
    An LLM subtask with no match is ∞ and does not move the cursor, so later LLM subtasks may
    still match (the SLM can re-converge).
    """
    distances: list[int | None] = []
    cursor = 0
    for llm_subtask in llm_subtasks:
        found = next(
            (j for j in range(cursor, len(slm_subtasks)) if similarity(slm_subtasks[j], llm_subtask) > threshold), None
        )
        if found is None:
            distances.append(None)
        else:
            distances.append(found - cursor)
            cursor = found + 1
    return distances


@dataclass(frozen=True, slots=True)
class RequestTree:
    """One request's profiled tree with the views the labels need."""

    key: str
    nodes: tuple[TreeNode, ...]

    @property
    def request(self) -> str:
        return next(n.text for n in self.nodes if n.kind == ROOT)

    def chain(self, model: Executor) -> list[TreeNode]:
        return llm_chain(self.nodes) if model is Executor.LLM else slm_chain(self.nodes)

    def subtasks(self, model: Executor) -> list[TreeNode]:
        """ST_1, ST_2, ... of the model's pure chain (root and final answer left out)."""
        return [n for n in self.chain(model)[1:] if not n.is_final and n.text]

    def final_answer(self, model: Executor) -> str | None:
        last = self.chain(model)[-1]
        return last.text if last.is_final else None

    def history(self, node: TreeNode) -> list[tuple[str, str]]:
        by_id = {n.id: n for n in self.nodes}
        pairs: list[tuple[str, str]] = []
        child = node
        while child.parent is not None:
            parent = by_id[child.parent]
            pairs.append((parent.text, child.output or ""))
            child = parent
        return pairs[::-1]


def request_trees(trees: Mapping[str, Sequence[TreeNode]]) -> list[RequestTree]:
    return [RequestTree(key, tuple(nodes)) for key, nodes in sorted(trees.items())]


def split_by_request(
    trees: Sequence[RequestTree], validation_fraction: float, seed: int = 0
) -> tuple[list[RequestTree], list[RequestTree]]:
    """(train, validation), by a hash of the request key: stable as runs grow, never splits a tree.

    With two or more requests neither side is left empty (a handful of shadow requests could
    otherwise all hash to one side, 0.8^8 = 17 % of the time for eight): the request whose hash is
    nearest the boundary moves across.
    """

    def bucket(key: str) -> float:
        digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    buckets = [bucket(t.key) for t in trees]
    cut = sum(b < validation_fraction for b in buckets)
    if len(trees) >= 2:
        cut = min(max(cut, 1), len(trees) - 1)
    held = set(sorted(range(len(trees)), key=buckets.__getitem__)[:cut])
    return [t for i, t in enumerate(trees) if i not in held], [t for i, t in enumerate(trees) if i in held]


def answer_similarity(a: str, b: str, similarity: Similarity) -> float:
    """How alike two final answers are, in [0, 1].

    SBERT (the paper's measure) for text; but two answers that are each just a number compare by
    value (1 if equal, else 0): SBERT scores "42" and "45" around 0.8, which would tell URC that an
    SLM whose arithmetic is off is as good as the LLM. Measured on the simulated world before this
    rule, most arithmetic requests got a target above τ_req whatever the SLM answered.
    """
    first, second = a.strip().rstrip("."), b.strip().rstrip(".")
    if _BARE_NUMBER.fullmatch(first) and _BARE_NUMBER.fullmatch(second):
        x, y = extract_number(first), extract_number(second)
        return 1.0 if x is not None and y is not None and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6) else 0.0
    if normalise_answer(first) == normalise_answer(second):
        return 1.0
    return max(0.0, min(1.0, similarity(a, b)))


def urc_targets(trees: Iterable[RequestTree], similarity: Similarity) -> list[tuple[str, float]]:
    """(request, :func:`answer_similarity` of the All-SLM and All-LLM final answers); 0 if either
    never finished."""
    examples = []
    for tree in trees:
        slm, llm = tree.final_answer(Executor.SLM), tree.final_answer(Executor.LLM)
        target = answer_similarity(slm, llm, similarity) if slm is not None and llm is not None else 0.0
        examples.append((tree.request, target))
    return examples


@dataclass(frozen=True, slots=True)
class DistanceExample:
    subtask: str
    seq: int
    distance: int | None


def distance_examples(trees: Iterable[RequestTree], similarity: Similarity, threshold: float) -> list[DistanceExample]:
    """One example per LLM subtask of each All-LLM chain, labelled against the All-SLM chain."""
    examples = []
    for tree in trees:
        llm, slm = tree.subtasks(Executor.LLM), tree.subtasks(Executor.SLM)
        distances = sl_distances([n.text for n in llm], [n.text for n in slm], similarity, threshold)
        examples += [DistanceExample(n.text, n.depth, d) for n, d in zip(llm, distances, strict=True)]
    return examples


def subtask_pairs(trees: Iterable[RequestTree], model: Executor) -> list[SubtaskPair]:
    """Every edge of every tree where ``model`` ran a subtask and wrote a next one (SP data)."""
    pairs = []
    for tree in trees:
        for node in tree.nodes:
            if node.kind != STEP or node.producing_model is not model or node.is_final or not node.text:
                continue
            parent = next(n for n in tree.nodes if n.id == node.parent)
            state = ChainState(tree.request, tuple(tree.history(parent)), parent.text, parent.depth)
            pairs.append(SubtaskPair(state, node.text))
    return pairs


def decomposition_examples(trees: Iterable[RequestTree]) -> list[DecompositionExample]:
    """The SLM's recorded decompositions, each with the subtask the LLM wrote after the original."""
    examples = []
    for tree in trees:
        llm_next = {n.parent: n for n in tree.nodes if n.kind == STEP and n.producing_model is Executor.LLM}
        by_id = {n.id: n for n in tree.nodes}
        for node in tree.nodes:
            if node.kind != DECOMPOSITION or node.parent is None:
                continue
            expected = llm_next.get(node.parent)
            examples.append(
                DecompositionExample(
                    request=tree.request,
                    subtask=by_id[node.parent].text,
                    expected_next=expected.text if expected is not None and not expected.is_final else None,
                    parts=tuple(parse_decomposition(node.text)),
                    history=tuple(tree.history(by_id[node.parent])),
                    seq=by_id[node.parent].depth,
                )
            )
    return examples


_WORD = re.compile(r"[A-Za-z][\w'-]*")
_TRIM = ".,;:?!()[]{}\"'"


def content_keys(text: str) -> frozenset[str]:
    """What a subtask or answer is *about*: its numbers (by value) and its proper names.

    Proper names are capitalised words that do not start the sentence (so "Find", "Then," and
    "Add" are left out). Two subtasks worded differently ("Look up the mother of Nora Selwick" /
    "Open the record of Nora Selwick ...") have the same keys; two that name a different entity or
    number ("... to 86 shells" / "... to 80 shells") do not. This is the part of a chain that a
    sentence embedding averages away (see ``estimators/divergence.py``).
    """
    keys: set[str] = set()
    for number in _BARE_NUMBER.findall(text):
        value = extract_number(number)
        if value is not None:
            keys.add(f"#{value:g}")
    words = [word.strip(_TRIM) for word in text.split()]
    starts = {0} | {i + 1 for i, word in enumerate(text.split()) if word.endswith((".", "?", "!", ":"))}
    for position, word in enumerate(words):
        if not word or not word[0].isupper() or not _WORD.fullmatch(word.split("'")[0] or "x"):
            continue
        # A capitalised first word is usually just the sentence's start ("Find", "Then", "I"),
        # unless a capitalised word follows it ("Nora Selwick is ...": a name).
        following = words[position + 1] if position + 1 < len(words) else ""
        if position in starts and not following[:1].isupper():
            continue
        keys.add(word.removesuffix("'s"))
    return frozenset(keys)


def same_content(slm: TreeNode, llm: TreeNode) -> bool:
    """Whether the SLM's and the LLM's continuations of one node agree: both answered and the
    answers name the same content, or both wrote a next subtask with the same content keys."""
    if slm.is_final != llm.is_final:
        return False
    if slm.is_final:
        return same_answer(slm.text, llm.text)
    return content_keys(slm.text) == content_keys(llm.text)


def same_answer(a: str, b: str) -> bool:
    """Two final answers are the same: equal numbers by value, else equal after normalising."""
    first, second = a.strip().rstrip("."), b.strip().rstrip(".")
    if _BARE_NUMBER.fullmatch(first) and _BARE_NUMBER.fullmatch(second):
        x, y = extract_number(first), extract_number(second)
        return x is not None and y is not None and math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-6)
    return normalise_answer(first) == normalise_answer(second)


def divergence_examples(trees: Iterable[RequestTree]) -> list[DivergenceExample]:
    """One example per profiled node that both models ran (the step's two children exist)."""
    examples = []
    for tree in trees:
        by_id = {n.id: n for n in tree.nodes}
        children: dict[str, dict[Executor, TreeNode]] = {}
        for node in tree.nodes:
            if node.kind == STEP and node.parent is not None and node.producing_model is not None:
                children.setdefault(node.parent, {})[node.producing_model] = node
        for parent_id, pair in children.items():
            slm, llm = pair.get(Executor.SLM), pair.get(Executor.LLM)
            if slm is None or llm is None:
                continue
            parent = by_id[parent_id]
            state = ChainState(tree.request, tuple(tree.history(parent)), parent.text, parent.depth)
            examples.append(
                DivergenceExample(
                    request_key=tree.key,
                    state=state,
                    agree=same_content(slm, llm),
                    # At the root the "result" is a plan statement: judge it by what comes next.
                    result_agree=(
                        same_content(slm, llm)
                        if parent.kind == ROOT
                        else content_keys(slm.output or "") == content_keys(llm.output or "")
                    ),
                    slm_confidence=slm.confidence,
                    slm_correct=slm.step_correct,
                )
            )
    return examples
