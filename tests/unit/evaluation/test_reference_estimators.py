"""The profiled (perfect) estimators read the trees: next subtasks as the models wrote them."""

from __future__ import annotations

import hashlib

import numpy as np

from hera_router.db.enums import Executor
from hera_router.evaluation.reference_estimators import profiled_estimators
from hera_router.routing.estimators import ChainState, Vector, cosine
from tests.unit.evaluation.stubs import simulated_profile, simulated_records
from tests.unit.evaluation.test_replay import SEED


def embed(text: str) -> Vector:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "big")
    return np.random.default_rng(seed).standard_normal(16).astype(np.float32)


def test_predictions_follow_each_models_chain_and_urc_marks_matched_requests() -> None:
    profile = simulated_profile(simulated_records("mixed", 6, SEED), SEED, budget=64)
    bundle = profiled_estimators(profile, embed, 16)
    for tree in profile.trees:
        state = ChainState(tree.request, (), tree.request, 0)
        for executor, predictor in ((Executor.SLM, bundle.sp_slm), (Executor.LLM, bundle.sp_llm)):
            rolled = predictor.roll(state, 2)
            first = tree.root.children[executor]
            assert cosine(rolled[0], embed(first.text)) > 0.999
            if not first.is_final and executor in first.children:
                assert cosine(rolled[1], embed(first.children[executor].text)) > 0.999
            # One step down the tree, with that step's history, the roll continues from there.
            if not first.is_final and first.text:
                below = ChainState(tree.request, ((tree.request, first.output or ""),), first.text, 1)
                assert np.allclose(predictor.roll(below, 1)[0], rolled[1])
        slm_answer, llm_answer = (_final(tree.root, e) for e in (Executor.SLM, Executor.LLM))
        expected = 1.0 if slm_answer is not None and slm_answer == llm_answer else 0.0
        assert bundle.urc.score(tree.request) == expected
    assert bundle.dp.predict("anything", 0) is None
    assert bundle.sd.decompose("r", "s", None) == []
    unknown = ChainState("not profiled", (), "not profiled", 0)
    assert not bundle.sp_slm.roll(unknown, 1)[0].any()


def _final(node, executor):  # type: ignore[no-untyped-def]
    from hera_router.agent.scoring import normalise_answer

    while executor in node.children:
        node = node.children[executor]
    return normalise_answer(node.text) if node.is_final else None
