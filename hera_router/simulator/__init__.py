"""The simulated agent world (SIMULATED): tasks with ground truth and simulated SLM/LLM executors.

- ``world.py``: a seed, the knowledge graph it implies, the task families (``lookup.py``,
  ``arithmetic.py``); requests are parsed back into tasks, so no index of generated requests is kept.
- ``model.py``: the simulated executor, a pure function of (world seed, role, prompt).
- ``backend.py``: ``SimBackend``, the ``sim`` entry of the backend registry.
- ``presets.toml`` / ``presets.py``: behaviour presets and their loader.
- ``generate.py``: request sets (JSONL); ``loop.py``: a minimal in-process agent loop;
  ``calibration.py``: the motivation-study report; ``hera_router/cli/world.py``: ``hera-router world ...``.

Reports made on this world say "simulated"; real deployments swap in real backends.
"""
