"""Scorers: how a final answer is compared with the gold answer, per metric.

A request file names its metric (``entity``, ``numeric`` or ``f1``) next to the gold answer, so
evaluation scores any request, simulated or real, without knowing which generator made it. Every
scorer returns a value in [0, 1] and accepts ``None`` (no final answer), which scores 0.
"""

from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable

Scorer = Callable[[str | None, str], float]

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation + "‘’“”")
_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
_ANSWER_PREFIX = re.compile(r"^\s*(?:final answer|answer|the answer is)\s*[:\-]?\s*", re.IGNORECASE)


def normalise_answer(text: str) -> str:
    """SQuAD-style normalisation: lowercase, no accents, punctuation or articles, single spaces."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _ANSWER_PREFIX.sub("", text.lower())
    text = _ARTICLES.sub(" ", text.translate(_PUNCT))
    return " ".join(text.split())


def score_entity(prediction: str | None, gold: str) -> float:
    """1.0 when the normalised prediction equals the normalised gold entity name, else 0.0."""
    if prediction is None:
        return 0.0
    return 1.0 if normalise_answer(prediction) == normalise_answer(gold) else 0.0


def extract_number(text: str) -> float | None:
    """The last number in ``text`` (models state the answer last: "17 + 5 = 22"), or ``None``."""
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", ""))
    except ValueError:
        return None


def score_numeric(prediction: str | None, gold: str, rel_tol: float = 1e-6, abs_tol: float = 1e-6) -> float:
    """1.0 when the last number in the prediction is within tolerance of the gold number."""
    if prediction is None:
        return 0.0
    predicted, expected = extract_number(prediction), extract_number(gold)
    if predicted is None or expected is None:
        return 0.0
    return 1.0 if math.isclose(predicted, expected, rel_tol=rel_tol, abs_tol=abs_tol) else 0.0


def score_f1(prediction: str | None, gold: str) -> float:
    """Token F1 over normalised answers (HotpotQA/DROP style)."""
    if prediction is None:
        return 0.0
    predicted, expected = normalise_answer(prediction).split(), normalise_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


SCORERS: dict[str, Scorer] = {"entity": score_entity, "numeric": score_numeric, "f1": score_f1}


def score(metric: str, prediction: str | None, gold: str) -> float:
    """Score with the named metric; an unknown metric is a configuration error worth a clear message."""
    try:
        scorer = SCORERS[metric]
    except KeyError:
        known = ", ".join(sorted(SCORERS))
        raise ValueError(f"unknown metric {metric!r}; expected one of: {known}") from None
    return scorer(prediction, gold)
