"""A cloud model must have a price unless it is allowed not to."""

from __future__ import annotations

import pytest

from hera_router.backends.pricing import require_cloud_prices, unpriced_cloud_models
from hera_router.config import BackendSettings, SettingsError, load_settings


def cloud(model: str, **extra: object) -> BackendSettings:
    return BackendSettings(backend="openai", url="http://127.0.0.1:9/v1", model=model, **extra)  # type: ignore[arg-type]


def test_the_default_and_simulated_configurations_start() -> None:
    require_cloud_prices(load_settings())
    require_cloud_prices(load_settings(cloud=BackendSettings(backend="sim", model="anything")))
    require_cloud_prices(load_settings(cloud=cloud("gpt-4o")))  # a default price


def test_an_unpriced_cloud_model_is_refused_with_how_to_price_it() -> None:
    with pytest.raises(SettingsError) as refused:
        require_cloud_prices(load_settings(cloud=cloud("gpt-unknown")))

    message = str(refused.value)
    assert "'gpt-unknown' (HERA_CLOUD) has no price" in message
    assert 'HERA_PRICES=\'{"gpt-unknown": {"input_per_mtok": ...' in message
    assert "HERA_CLOUD__ALLOW_UNPRICED=true" in message


def test_a_price_of_zero_or_the_explicit_allowance_accepts_it() -> None:
    free = {"gpt-unknown": {"input_per_mtok": 0, "output_per_mtok": 0}}
    require_cloud_prices(load_settings(cloud=cloud("gpt-unknown"), prices=free))
    require_cloud_prices(load_settings(cloud=cloud("gpt-unknown", allow_unpriced=True)))


def test_setting_prices_replaces_the_defaults_so_a_default_model_needs_its_price_again() -> None:
    settings = load_settings(cloud=cloud("gpt-4o"), prices={"other": {"input_per_mtok": 1, "output_per_mtok": 2}})
    assert [backend.model for _, backend in unpriced_cloud_models(settings)] == ["gpt-4o"]


def test_cloud_tiers_need_prices_of_their_own_or_in_the_table() -> None:
    def tier(name: str, **prices: float) -> dict[str, object]:
        return {"name": name, "role": "cloud", "backend": {"backend": "openai", "model": name}, **prices}

    edge = {"name": "tiny", "role": "edge", "backend": {"backend": "tgi", "model": "tiny"}}
    unpriced = load_settings(models=[edge, tier("big")])
    priced = load_settings(models=[edge, tier("big", input_per_mtok=0.0)])
    in_table = load_settings(models=[edge, tier("big")], prices={"big": {"input_per_mtok": 1, "output_per_mtok": 1}})

    with pytest.raises(SettingsError, match=r"'big' \(HERA_MODELS tier 'big'\) has no price.*allow_unpriced"):
        require_cloud_prices(unpriced)
    require_cloud_prices(priced)
    require_cloud_prices(in_table)
