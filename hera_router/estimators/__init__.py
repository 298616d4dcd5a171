"""The HERA estimators (the HERA paper, §3.2) behind the protocols of ``routing/estimators.py``.

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

ESTIMATOR_NAMES: tuple[str, ...] = ("urc", "sp_slm", "sp_llm", "dp", "sd", "divergence")
"""Registry names, in the order bootstrap trains them (SD's evaluation uses nothing trained;
``divergence`` reads the active SP_SLM / SP_LLM, so it comes after them)."""
REQUIRED_ESTIMATORS: tuple[str, ...] = ("urc", "sp_slm", "sp_llm", "dp", "sd")
"""What a router needs to route with HERA at all. ``divergence`` is optional for a router (without
it HERA compares the SP embeddings by cosine, as the paper does, and has no verify stage), so a
deployment bootstrapped before it existed keeps routing."""
CALIBRATION = "calibration"
"""Registry name of the thresholds fitted on the deployment's profiled traffic
(``training/calibration.py``): versioned, promoted and rolled back like an estimator."""
