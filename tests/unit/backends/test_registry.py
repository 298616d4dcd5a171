from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Literal

import pytest

from hera_router.backends.base import BackendConfigError, Generation, GenerationParams, Message
from hera_router.backends.echo import EchoBackend
from hera_router.backends.registry import available_backends, create_backend
from hera_router.backends.resilience import BreakerState, ResilientBackend
from hera_router.config import BackendSettings, load_settings


def test_known_backends() -> None:
    assert {"tgi", "openai", "local", "sim", "echo"} <= set(available_backends())


def test_create_backend_wraps_the_client_in_the_failure_policy(tmp_path: Path) -> None:
    settings = load_settings(
        data_dir=tmp_path,
        edge=BackendSettings(backend="echo", model="echo", max_retries=2, breaker_failure_threshold=7),
    )
    backend = create_backend(settings, "edge")
    assert isinstance(backend, ResilientBackend)
    assert backend.name == "echo"
    assert backend.retry.max_retries == 2
    assert backend.breaker.failure_threshold == 7
    assert backend.breaker.state is BreakerState.CLOSED
    assert backend.generate([Message("user", "hi")], GenerationParams()).text == "echo: hi"


def test_unknown_backend_name_is_named_with_its_setting(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, cloud=BackendSettings(backend="gpt5000"))
    with pytest.raises(
        BackendConfigError, match=r"HERA_CLOUD__BACKEND='gpt5000' is not a known backend; choose one of"
    ):
        create_backend(settings, "cloud")


def test_http_backends_need_a_url(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, edge=BackendSettings(backend="tgi", url=None))
    with pytest.raises(BackendConfigError, match="HERA_EDGE__URL is required"):
        create_backend(settings, "edge")


def test_openai_without_a_key_is_refused_for_the_real_api(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, cloud=BackendSettings(backend="openai", url=None, model="gpt-4o"))
    with pytest.raises(BackendConfigError, match=r"api\.openai\.com/v1 needs an API key"):
        create_backend(settings, "cloud")


def test_local_with_an_unknown_model_says_so(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, edge=BackendSettings(backend="local", model="no-such-model"))
    with pytest.raises(BackendConfigError, match="'no-such-model' is neither"):
        create_backend(settings, "edge")


def test_missing_simulator_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail, as if the module did not exist.
    monkeypatch.setitem(sys.modules, "hera_router.simulator.backend", None)
    settings = load_settings(data_dir=tmp_path, edge=BackendSettings(backend="sim", model="sim-slm"))
    with pytest.raises(BackendConfigError, match=r"HERA_EDGE__BACKEND=sim needs hera_router\.simulator\.backend"):
        create_backend(settings, "edge")


def test_sim_maps_edge_to_the_slm_and_cloud_to_the_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[tuple[str, str, int]] = []

    class FakeSim:
        name = "sim"

        def __init__(self, role: Literal["slm", "llm"], model: str, seed: int = 0, **options: object) -> None:
            built.append((role, model, seed))
            self.model = model

        def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
            return EchoBackend(self.model).generate(messages, params)

    module = types.ModuleType("hera_router.simulator.backend")
    module.SimBackend = FakeSim  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hera_router.simulator.backend", module)
    settings = load_settings(data_dir=tmp_path, simulator={"seed": 42})

    create_backend(settings, "edge")
    create_backend(settings, "cloud")

    # Both models live in the world of the configured seed (request files are generated from it).
    assert built == [("slm", settings.edge.model, 42), ("llm", settings.cloud.model, 42)]
