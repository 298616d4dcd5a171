"""Scorers: entity exact match with normalisation, numeric tolerance, token F1."""

from __future__ import annotations

import pytest

from hera_router.agent.scoring import extract_number, normalise_answer, score, score_entity, score_f1, score_numeric


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("Mara Voss", "Mara Voss"),
        ("  mara voss. ", "Mara Voss"),
        ("Final answer: Mara Voss", "Mara Voss"),
        ("The Crimson Harbor", "Crimson Harbor"),
        ("Zoë", "Zoe"),
    ],
)
def test_entity_match_normalises(prediction: str, gold: str) -> None:
    assert score_entity(prediction, gold) == 1.0


@pytest.mark.parametrize("prediction", ["Mara Vos", "Voss", "Mara Voss Jr", "", None])
def test_entity_match_rejects_wrong_answers(prediction: str | None) -> None:
    assert score_entity(prediction, "Mara Voss") == 0.0


@pytest.mark.parametrize("prediction", ["22", "22.0", "17 + 5 = 22", "22 marbles"])
def test_numeric_accepts_the_number(prediction: str) -> None:
    assert score_numeric(prediction, "22") == 1.0


@pytest.mark.parametrize("prediction", ["23", "22 + 1 = 23", "no number", None, "21.99"])
def test_numeric_rejects_wrong_numbers(prediction: str | None) -> None:
    assert score_numeric(prediction, "22") == 0.0


def test_numeric_tolerance_and_thousands() -> None:
    assert score_numeric("1,234.5", "1234.5") == 1.0
    assert score_numeric("100.4", "100", rel_tol=0.01) == 1.0
    assert extract_number("-3e2 apples") == -300.0


def test_f1_partial_credit() -> None:
    assert score_f1("Mara Voss", "Mara Voss") == 1.0
    assert 0.0 < score_f1("Mara", "Mara Voss") < 1.0
    assert score_f1("Ivo", "Mara Voss") == 0.0
    assert score_f1(None, "x") == 0.0


def test_score_dispatch_and_unknown_metric() -> None:
    assert score("entity", "x", "X") == 1.0
    assert score("numeric", "4", "4") == 1.0
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score("bleu", "a", "a")


def test_normalise_answer() -> None:
    assert normalise_answer("  The  Quick, Brown fox! ") == "quick brown fox"
