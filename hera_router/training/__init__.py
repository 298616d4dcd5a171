"""Offline learning: profiling trees → labels → LoRA-trained estimators → registry.

- ``profiling.py``: the binary SLM/LLM tree of every request (``hera-router profile``).
- ``labels.py``: S-L distances, URC targets, SP pairs and SD examples from the trees.
- ``evaluation.py``: validation metrics and the trivial baselines they must beat.
- ``trainers.py``: ``hera-router train NAME --profile RUN`` (artifact + registry + training run).
- ``bootstrap.py``: profile a default simulated set and train every estimator.
"""
