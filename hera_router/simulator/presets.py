"""The simulator's behaviour configuration: typed, loaded from ``presets.toml`` plus an optional file.

``presets.toml`` (next to this module) documents every field. A preset is the ``default`` section
overridden field by field by the preset's own section; a user config file of the same shape is
applied on top, so an operator can tweak one number without copying the rest.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ModelRole = Literal["slm", "llm"]
_Probability = Field(ge=0.0, le=1.0)


class RoleBehaviour(BaseModel):
    """How one simulated model behaves; see ``presets.toml`` for what each field means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    error_base: float = _Probability
    error_per_difficulty: float = _Probability
    late_gain: float = Field(ge=0.0)
    late_hops: int = Field(ge=2)
    compounding: float = Field(ge=0.0)
    substep_factor: float = _Probability
    misread: float = _Probability
    split_base: float = _Probability
    split_late: float = _Probability
    paraphrase: float = _Probability
    fix: float = _Probability
    drift: float = _Probability
    reconverge: float = _Probability
    logprob_correct: float = Field(le=0.0)
    logprob_wrong: float = Field(le=0.0)
    logprob_difficulty: float = Field(le=0.0)
    logprob_noise: float = Field(ge=0.0)
    first_token_s: float = Field(ge=0.0)
    prefill_s_per_token: float = Field(ge=0.0)
    decode_s_per_token: float = Field(ge=0.0)
    latency_jitter: float = Field(ge=0.0, le=1.0)

    def error_probability(self, difficulty: float, position: float, decomposed: bool, loose: float = 0.0) -> float:
        """P(wrong result) for a step of ``difficulty`` at ``position`` (:meth:`depth`: 0 at the first hop).

        ``loose`` is the share of the history's subtasks not worded the plan's way (0..1).
        """
        p = (self.error_base + self.error_per_difficulty * difficulty) * (1.0 + self.late_gain * position)
        p *= 1.0 + self.compounding * loose
        if decomposed:
            p *= self.substep_factor
        return min(p, 1.0)

    def depth(self, hop: int) -> float:
        """The ``position`` of hop ``hop`` (1-based) for :meth:`error_probability`: 0 at the first hop, 1 at
        ``late_hops``, more beyond. It grows with the history a step carries, whatever the chain's length."""
        return (hop - 1) / (self.late_hops - 1)

    def split_probability(self, position: float) -> float:
        return self.split_base + (self.split_late - self.split_base) * position

    def latency_s(self, prompt_tokens: int, completion_tokens: int, jitter: float) -> float:
        """Reported seconds for a call; ``jitter`` in [-1, 1] comes from the call's seeded draw."""
        base = (
            self.first_token_s + self.prefill_s_per_token * prompt_tokens + self.decode_s_per_token * completion_tokens
        )
        return round(base * (1.0 + self.latency_jitter * jitter), 6)


class PresetError(ValueError):
    """The preset name or the config file is wrong; the message says which and how."""


class WorldShape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lookup_min_hops: int = Field(ge=1)
    lookup_max_hops: int = Field(ge=1)
    arithmetic_min_ops: int = Field(ge=1)
    arithmetic_max_ops: int = Field(ge=1)
    facts_min_hops: int = Field(default=2, ge=1)
    facts_max_hops: int = Field(default=3, ge=1)
    facts_distractors: int = Field(default=6, ge=0)
    """Facts in a ``facts`` request that are not on its chain."""


class Tier(BaseModel):
    """A simulated model of the ladder: the role it is built on and its resolved behaviour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: ModelRole
    behaviour: RoleBehaviour
    own_stream: bool
    """False when the tier is its base role unchanged: it then draws the role's very random stream,
    so tier ``mid`` answers exactly as the two-model ``slm`` does."""


class Behaviour(BaseModel):
    """A complete preset: the world's shape and both models."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    world: WorldShape
    slm: RoleBehaviour
    llm: RoleBehaviour
    tiers: dict[str, Tier] = Field(default_factory=dict)
    """Named models for the N-model ladder: a role's behaviour with overrides."""

    @model_validator(mode="before")
    @classmethod
    def _resolve_tiers(cls, data: Any) -> Any:
        # A tier is written as {base = "slm"|"llm", <field> = <override>, ...}: resolved against
        # this preset's roles, so a world with a stronger SLM also has a stronger "mid" tier.
        if not isinstance(data, dict) or not isinstance(data.get("tiers"), dict):
            return data
        resolved = {}
        for name, spec in data["tiers"].items():
            if not isinstance(spec, dict) or spec.get("base") not in ("slm", "llm"):
                raise ValueError(f"tier {name!r} needs base = 'slm' or 'llm'")
            overrides = {key: value for key, value in spec.items() if key != "base"}
            base = data[spec["base"]]
            resolved[name] = {
                "base": spec["base"],
                "behaviour": {**dict(base), **overrides},
                "own_stream": bool(overrides),
            }
        return {**data, "tiers": resolved}

    def role(self, role: ModelRole) -> RoleBehaviour:
        return self.slm if role == "slm" else self.llm

    def tier(self, name: str) -> Tier:
        """The tier ``name``; the roles themselves are tiers ``slm`` and ``llm``."""
        if name in ("slm", "llm"):
            return Tier(base=name, behaviour=self.role(name), own_stream=False)  # type: ignore[arg-type]
        if name not in self.tiers:
            known = ", ".join(["slm", "llm", *self.tiers])
            raise PresetError(f"unknown simulated model tier {name!r}; known: {known}")
        return self.tiers[name]


def _package_presets() -> dict[str, Any]:
    text = resources.files("hera_router.simulator").joinpath("presets.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def preset_names(config_path: Path | None = None) -> list[str]:
    names = set(_package_presets())
    if config_path is not None:
        names |= set(_read_file(config_path))
    return sorted(names)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PresetError(f"simulator config {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"simulator config {path} is not valid TOML: {exc}") from None


def load_behaviour(preset: str = "default", config_path: Path | None = None) -> Behaviour:
    """The behaviour of ``preset``, from the packaged presets and optionally a config file on top."""
    packaged = _package_presets()
    user = _read_file(config_path) if config_path is not None else {}
    if preset not in packaged and preset not in user:
        known = ", ".join(preset_names(config_path))
        raise PresetError(f"unknown simulator preset {preset!r}; known presets: {known}")
    data: dict[str, Any] = {}
    for layer in (packaged.get("default", {}), user.get("default", {})):
        data = _merge(data, layer)
    if preset != "default":
        for layer in (packaged.get(preset, {}), user.get(preset, {})):
            data = _merge(data, layer)
    try:
        return Behaviour(name=preset, **data)
    except ValidationError as exc:
        where = f" (with {config_path})" if config_path else ""
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise PresetError(f"simulator preset {preset!r}{where} is invalid: {problems}") from None
