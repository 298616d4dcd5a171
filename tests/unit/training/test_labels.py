"""Labelling rules on hand-built chains: S-L distances (Figure 5, ∞), URC targets, SP/SD examples."""

from __future__ import annotations

from hera_router.db.enums import Executor
from hera_router.training.labels import (
    RequestTree,
    answer_similarity,
    decomposition_examples,
    distance_examples,
    sl_distances,
    split_by_request,
    subtask_pairs,
    urc_targets,
)
from hera_router.training.profiling import DECOMPOSITION, ROOT, STEP, TreeNode


def same_letter(a: str, b: str) -> float:
    """Similar (1.0) when two subtasks name the same thing: 'S2~x' matches 'L1~x'."""
    return 1.0 if a.split("~")[1] == b.split("~")[1] else 0.0


def test_figure_5_example() -> None:
    # The HERA paper, §2: L1↔S2, L2↔S5, L3↔S6 → distances 1, 2, 0 (3 LLM steps, 6 SLM steps).
    llm = ["L1~a", "L2~b", "L3~c"]
    slm = ["S1~z", "S2~a", "S3~y", "S4~w", "S5~b", "S6~c"]
    assert sl_distances(llm, slm, same_letter) == [1, 2, 0]


def test_an_llm_subtask_never_matched_is_infinite_and_later_ones_can_reconverge() -> None:
    llm = ["L1~a", "L2~q", "L3~c"]
    slm = ["S1~a", "S2~x", "S3~c"]
    assert sl_distances(llm, slm, same_letter) == [0, None, 1]


def test_an_unmatched_chain_is_all_infinite() -> None:
    assert sl_distances(["L1~a", "L2~b"], ["S1~x", "S2~y", "S3~z"], same_letter) == [None, None]
    assert sl_distances(["L1~a"], [], same_letter) == [None]


def test_the_threshold_is_strict() -> None:
    assert sl_distances(["L1~a"], ["S1~a"], lambda a, b: 0.7, threshold=0.7) == [None]


def node(id_: str, parent: str | None, depth: int, model: Executor | None, text: str, **extra: object) -> TreeNode:
    kind = ROOT if parent is None else STEP
    return TreeNode(id=id_, parent=parent, depth=depth, kind=kind, producing_model=model, text=text, **extra)  # type: ignore[arg-type]


def small_tree() -> RequestTree:
    """Root → (SLM: s1 → final 'x'), (LLM: l1 → final 'x'), plus a decomposition of l1."""
    return RequestTree(
        "q1",
        (
            node("0", None, 0, None, "request"),
            node("1", "0", 1, Executor.SLM, "s1~a", output="r0 by slm"),
            node("2", "0", 1, Executor.LLM, "l1~a", output="r0 by llm"),
            node("3", "1", 2, Executor.SLM, "x", output="r1", is_final=True),
            node("4", "2", 2, Executor.LLM, "x", output="r1", is_final=True),
            node("5", "2", 2, Executor.SLM, "s2~b", output="r1 by slm"),
            TreeNode(
                id="d2", parent="2", depth=1, kind=DECOMPOSITION, producing_model=Executor.SLM, text="1. p1\n2. p2"
            ),
        ),
    )


def test_chains_finals_and_urc_targets() -> None:
    tree = small_tree()
    assert [n.text for n in tree.chain(Executor.SLM)] == ["request", "s1~a", "x"]
    assert [n.text for n in tree.subtasks(Executor.LLM)] == ["l1~a"]
    assert tree.final_answer(Executor.SLM) == tree.final_answer(Executor.LLM) == "x"
    assert urc_targets([tree], lambda a, b: 1.0 if a == b else 0.0) == [("request", 1.0)]
    unfinished = RequestTree("q2", tree.nodes[:3])
    assert urc_targets([unfinished], lambda a, b: 1.0) == [("request", 0.0)]


def test_distance_sp_and_sd_examples() -> None:
    tree = small_tree()
    [example] = distance_examples([tree], same_letter, 0.7)
    assert (example.subtask, example.seq, example.distance) == ("l1~a", 1, 0)

    llm_pairs = subtask_pairs([tree], Executor.LLM)
    assert [(p.state.current, p.state.seq, p.next_subtask) for p in llm_pairs] == [("request", 0, "l1~a")]
    slm_pairs = subtask_pairs([tree], Executor.SLM)
    assert {(p.state.current, p.next_subtask) for p in slm_pairs} == {("request", "s1~a"), ("l1~a", "s2~b")}
    deep = next(p for p in slm_pairs if p.state.current == "l1~a")
    assert list(deep.state.history) == [("request", "r0 by llm")]

    [sd] = decomposition_examples([tree])
    assert (sd.subtask, sd.expected_next, sd.parts, sd.seq) == ("l1~a", None, ("p1", "p2"), 1)


def test_split_is_by_request_and_stable() -> None:
    trees = [RequestTree(f"q{i}", small_tree().nodes) for i in range(200)]
    train, validation = split_by_request(trees, 0.2)
    assert {t.key for t in train}.isdisjoint({t.key for t in validation})
    assert len(train) + len(validation) == 200
    assert 20 <= len(validation) <= 60
    again, _ = split_by_request(trees[:100], 0.2)
    assert {t.key for t in again} == {t.key for t in train if int(t.key[1:]) < 100}


def test_answers_that_are_numbers_compare_by_value_not_by_sbert() -> None:
    def sbert(a: str, b: str) -> float:
        return 0.8  # what SBERT says of "42" vs "45"

    assert answer_similarity("42", "45", sbert) == 0.0
    assert answer_similarity("42", " 42.", sbert) == 1.0
    assert answer_similarity("1,200", "1200", sbert) == 1.0
    assert answer_similarity("-3.5", "-3.5", sbert) == 1.0
    assert answer_similarity("-3.5", "3.5", sbert) == 0.0
    assert answer_similarity("The Louvre", "louvre", sbert) == 1.0
    assert answer_similarity("Hugo Wenss", "Lena Marsh", sbert) == 0.8
    assert answer_similarity("42 apples", "45 apples", sbert) == 0.8  # text: SBERT decides


def test_a_small_split_leaves_neither_side_empty() -> None:
    trees = [RequestTree(f"shadow-{i}", small_tree().nodes) for i in range(8)]
    train, validation = split_by_request(trees, 0.0)
    assert (len(train), len(validation)) == (7, 1)
    train, validation = split_by_request(trees, 0.9999)
    assert (len(train), len(validation)) == (1, 7)
    assert split_by_request(trees[:1], 0.0) == (trees[:1], [])
