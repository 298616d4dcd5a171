"""The estimator fixtures live in ``tests/integration/conftest.py`` (shared with the routing and
continual-training tests); the names below stay importable from here."""

from tests.integration.conftest import TINY, URC_PROFILE, TrainedEstimators, tiny_settings

__all__ = ["TINY", "URC_PROFILE", "TrainedEstimators", "tiny_settings"]
