from __future__ import annotations

from pathlib import Path

import pytest

from hera_router.backends.base import GenerationParams, Message
from hera_router.backends.echo import EchoBackend
from hera_router.backends.pricing import cost_usd, generation_cost
from hera_router.config import Price, load_settings


def test_cloud_cost_is_tokens_times_the_model_price(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    # gpt-4o-mini: 0.15 USD / 1M input, 0.60 USD / 1M output
    cost = cost_usd(settings, "gpt-4o-mini", 1_000_000, 500_000, latency_s=3.0, role="cloud")
    assert cost == pytest.approx(0.15 + 0.30)


def test_unpriced_models_cost_nothing(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert cost_usd(settings, "my-own-slm", 10_000, 10_000, 1.0, "edge") == 0.0


def test_edge_can_be_priced_by_gpu_time_on_top_of_tokens(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        edge_cost_per_gpu_second=0.002,
        prices={"slm": Price(input_per_mtok=1.0, output_per_mtok=2.0)},
    )
    edge = cost_usd(settings, "slm", 1_000_000, 1_000_000, 2.5, "edge")
    cloud = cost_usd(settings, "slm", 1_000_000, 1_000_000, 2.5, "cloud")
    assert edge == pytest.approx(3.0 + 0.005)
    assert cloud == pytest.approx(3.0)  # the provider bills tokens, not our clock


def test_generation_cost_reads_the_generation(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, prices={"echo": Price(input_per_mtok=1e6, output_per_mtok=2e6)})
    generation = EchoBackend().generate([Message("user", "one two three")], GenerationParams())
    # 3 prompt words at 1 USD each, 4 completion words ("echo: one two three") at 2 USD each
    assert generation_cost(settings, generation, "cloud") == pytest.approx(3 + 8)
