"""The HERA estimators (hera-paper.md §3.2) behind the protocols of ``routing/estimators.py``.

- ``similarity.py``: SBERT all-MiniLM-L6-v2 embeddings and cosine, batched and cached.
- ``encoder.py``: a sentence encoder + LoRA with a regression or classification head (URC, DP).
- ``causal.py``: a causal LM + LoRA that writes text from a prompt (generative SP, trained SD).
- ``request_scorer.py`` (URC), ``predictor.py`` (SP_SLM / SP_LLM, ``embedding`` and ``generative``),
  ``distance.py`` (DP), ``decomposer.py`` (SD, ``prompted`` and ``trained``).
- ``artifacts.py``: the on-disk layout of a trained version; ``loader.py``: the registry-backed,
  per-process source of the active :class:`~hera_router.routing.estimators.Estimators`.

Nothing here loads a model at import time: torch and transformers are imported by the functions
that need them, and models are read from disk only (``HF_HUB_OFFLINE=1``).
"""

ESTIMATOR_NAMES: tuple[str, ...] = ("urc", "sp_slm", "sp_llm", "dp", "sd")
"""Registry names, in the order bootstrap trains them (SD's evaluation uses nothing trained)."""
