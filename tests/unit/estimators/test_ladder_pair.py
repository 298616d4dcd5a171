"""The ladder's per-pair start estimators (estimators/ladder_pair.py) on small synthetic profiles:
they learn a signal that is there and none that is not, the start rung is the cheapest one judged
sufficient, the thresholds skip a rung only where that pays, and the artifact round-trips."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import sklearn.linear_model  # noqa: F401 - imported at collection: its import is seconds on a loaded box

from hera_router.estimators.divergence import LogisticHead
from hera_router.estimators.ladder_pair import (
    NEVER,
    HashedNgrams,
    LadderStarts,
    PairEstimator,
    SkipRule,
    encoder_named,
    fit_ladder_starts,
    fit_pair_head,
    fit_pair_heads,
    fit_skip_rules,
    pair_features,
    replay,
    start_rungs,
)

RNG_SEED = 7


def _profile(n: int = 400, *, signal: bool) -> tuple[np.ndarray, list[int], list[str], np.ndarray]:
    """``n`` steps of 3 rungs. With ``signal``, rung 0 is wrong exactly on the steps whose
    embedding's first coordinate is high (rung 1 right there); without, rung 0's errors are random."""
    rng = np.random.default_rng(RNG_SEED)
    embeddings = rng.normal(size=(n, 8))
    seqs = [int(s) for s in rng.integers(0, 6, size=n)]
    groups = [f"r{i // 5}" for i in range(n)]  # five steps a request
    hard = embeddings[:, 0] > 0.8 if signal else rng.random(n) < 0.2
    correct = np.ones((n, 3), dtype=bool)
    correct[:, 0] = ~hard
    return embeddings, seqs, groups, correct


def test_a_pair_head_learns_a_signal_that_is_there() -> None:
    embeddings, seqs, groups, correct = _profile(signal=True)
    heads = fit_pair_heads(embeddings, seqs, groups, correct)
    first, second = heads.infos
    assert first["oof_auc"] > 0.9  # rung 1 is needed where x0 is high: scored out of fold
    assert second["constant"]  # rung 1 is never wrong: nothing to learn, the base rate (0)
    assert heads.oof.shape == (len(seqs), 2)


def test_a_pair_head_does_not_learn_a_signal_that_is_not_there() -> None:
    embeddings, seqs, groups, correct = _profile(signal=False)
    _, info, oof = fit_pair_head(pair_features(embeddings, seqs), list(~correct[:, 0]), groups)
    assert info["train_auc"] > info["oof_auc"]  # what it fitted does not carry to unseen requests
    assert 0.35 < info["oof_auc"] < 0.65
    assert oof.std() < 0.1  # regularised towards the base rate


def test_the_start_is_the_first_rung_judged_sufficient_with_a_position_aware_threshold() -> None:
    probabilities = np.array([[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.5, 0.1], [0.5, 0.1]])
    seqs = np.array([0, 0, 0, 0, 5])
    rules = [SkipRule(0.6, step=0.05), SkipRule(0.6)]
    # 0.5 < 0.6 at seq 0; at seq 5 the threshold is 0.6 - 0.05 * 5 = 0.35 <= 0.5: skip.
    assert start_rungs(probabilities, seqs, rules).tolist() == [0, 1, 2, 0, 1]
    assert start_rungs(probabilities, seqs, [NEVER, NEVER]).tolist() == [0] * 5
    assert SkipRule(0.6, step=0.05, cap=2).threshold(9) == pytest.approx(0.5)


def test_replay_climbs_one_rung_at_a_time_and_pays_every_rung_it_tries() -> None:
    confidence = np.array([[-1.0, -1.0, -1.0], [-0.1, -1.0, -1.0], [-1.0, -0.1, -1.0], [math.nan, -0.1, -1.0]])
    correct = np.array([[False, False, True], [True, False, False], [False, True, False], [True, True, False]])
    cost = np.array([[1.0, 10.0, 100.0]] * 4)
    right, spent = replay(np.array([0, 0, 0, 1]), confidence, correct, cost, verify=[-0.5, -0.5])
    assert spent.tolist() == [111.0, 1.0, 11.0, 10.0]  # the NaN row started on rung 1: rung 0 never paid
    assert right.tolist() == [True, True, True, True]


def _cascade(n: int = 300, *, dear_bottom: bool) -> tuple[np.ndarray, ...]:
    """Three rungs; rung 0 is wrong on a fifth of the steps, where its confidence is low."""
    rng = np.random.default_rng(RNG_SEED)
    wrong = rng.random(n) < 0.2
    confidence = np.column_stack([np.where(wrong, -1.0, -0.1), np.full(n, -0.1), np.full(n, -0.1)])
    correct = np.column_stack([~wrong, np.ones(n, bool), np.ones(n, bool)])
    bottom = 20.0 if dear_bottom else 1.0  # dear_bottom: rung 0 costs more than rung 1 and is weaker
    cost = np.tile([bottom, 5.0, 50.0], (n, 1))
    return wrong, np.zeros(n, dtype=np.int64), confidence, correct, cost


def test_a_rung_dearer_and_weaker_than_the_next_is_always_skipped() -> None:
    _, seqs, confidence, correct, cost = _cascade(dear_bottom=True)
    uninformative = np.full((len(seqs), 2), 0.2)
    rules, info = fit_skip_rules(uninformative, seqs, confidence, correct, cost, verify=[-0.5, -0.5])
    assert rules[0].base == 0.0  # always skip rung 0
    assert not math.isfinite(rules[1].base)  # rung 1 is the cheapest good one: never skip it
    assert info["start_share"] == [0.0, 1.0, 0.0]
    assert info["replayed_cost"] < info["replayed_cost_without_starts"]


def test_a_cheap_rung_is_skipped_only_where_the_estimator_says_it_fails() -> None:
    wrong, seqs, confidence, correct, cost = _cascade(dear_bottom=False)
    informative = np.column_stack([np.where(wrong, 0.9, 0.05), np.full(len(seqs), 0.01)])
    rules, _ = fit_skip_rules(informative, seqs, confidence, correct, cost, verify=[-0.5, -0.5])
    starts = start_rungs(informative, seqs, rules)
    assert (starts[wrong] == 1).all()
    assert (starts[~wrong] == 0).all()
    # Without a signal, the same cheap rung is worth trying on every step: nothing is skipped.
    flat = np.full((len(seqs), 2), 0.2)
    rules, info = fit_skip_rules(flat, seqs, confidence, correct, cost, verify=[-0.5, -0.5])
    assert rules == [NEVER, NEVER]
    assert info["replayed_cost"] == info["replayed_cost_without_starts"]


def test_skipping_never_buys_cost_with_more_wrong_steps_than_the_slack() -> None:
    n = 200
    seqs = np.zeros(n, dtype=np.int64)
    # Rung 1 is cheaper than rung 0 but wrong on a tenth of the steps, with a confident logprob the
    # verify stage cannot catch: skipping rung 0 would save money and lose accuracy.
    confidence = np.full((n, 3), -0.1)
    correct = np.ones((n, 3), dtype=bool)
    correct[: n // 10, 1] = False
    cost = np.tile([20.0, 5.0, 50.0], (n, 1))
    flat = np.full((n, 2), 0.2)
    rules, _ = fit_skip_rules(flat, seqs, confidence, correct, cost, verify=[-0.5, -0.5])
    assert rules[0] == NEVER
    rules, _ = fit_skip_rules(flat, seqs, confidence, correct, cost, verify=[-0.5, -0.5], slack=n // 10)
    assert rules[0].base == 0.0  # allowed that many more wrong steps, it takes the saving


def _starts() -> LadderStarts:
    embeddings, seqs, groups, correct = _profile(signal=True)
    rng = np.random.default_rng(RNG_SEED)
    confidence = np.where(correct, -0.1, -1.0) + rng.normal(0, 0.01, size=correct.shape)
    cost = np.tile([1.0, 5.0, 50.0], (len(seqs), 1))
    heads = fit_pair_heads(embeddings, seqs, groups, correct)
    return fit_ladder_starts(
        heads, ("a", "b", "c"), seqs, confidence, correct, cost, [-0.5, math.inf], "hashed-ngrams-8", tolerance=0.0
    )


def test_the_artifact_round_trips(tmp_path: Path) -> None:
    fitted = _starts()
    loaded = LadderStarts.load(fitted.save(tmp_path / "starts.json"))
    assert loaded.names == ("a", "b", "c")
    assert loaded.verify_thresholds == (-0.5, math.inf)
    assert loaded.encoder == "hashed-ngrams-8"
    assert [p.rule for p in loaded.pairs] == [p.rule for p in fitted.pairs]
    assert loaded.version == fitted.version
    rows = np.random.default_rng(1).normal(size=(20, 8))
    seqs = list(range(20))
    np.testing.assert_allclose(loaded.probabilities(rows, seqs), fitted.probabilities(rows, seqs), rtol=1e-6)
    assert loaded.start_many(rows, seqs)[0].tolist() == fitted.start_many(rows, seqs)[0].tolist()
    (tmp_path / "other.json").write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match="not a ladder start artifact"):
        LadderStarts.load(tmp_path / "other.json")
    with pytest.raises(ValueError, match="cannot read"):
        LadderStarts.load(tmp_path / "absent.json")


def test_an_artifact_needs_one_pair_and_one_verify_threshold_per_adjacent_pair() -> None:
    pair = PairEstimator(LogisticHead(np.zeros(3), 0.0))
    with pytest.raises(ValueError, match="pair estimators"):
        LadderStarts(("a", "b", "c"), (0.0, 0.0), (pair,))
    with pytest.raises(ValueError, match="verify thresholds"):
        LadderStarts(("a", "b"), (0.0, 0.0), (pair,))


def test_encoders_by_name() -> None:
    encoder = encoder_named("hashed-ngrams-16")
    assert isinstance(encoder, HashedNgrams)
    rows = encoder.embed_many(["Add 3 to 4", "Add 3 to 4", "Find the mother of Ada"])
    assert rows.shape == (3, 16)
    np.testing.assert_allclose(rows[0], rows[1])
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0)
    with pytest.raises(ValueError, match="unknown ladder start encoder"):
        encoder_named("bag-of-words")
