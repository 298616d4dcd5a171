"""Policy name -> factory. The router task and the CLI only ever ask this module by name."""

from __future__ import annotations

from hera_router.config import RoutingSettings
from hera_router.routing.base import Policy, PolicyFactory, UnknownPolicyError
from hera_router.routing.baselines import AllLLM, AllSLM, MinionsPolicy, RandomPolicy
from hera_router.routing.hera import VARIANTS, hera_variant
from hera_router.routing.hybridllm import HybridLLMPolicy
from hera_router.routing.ladder import LadderPolicy
from hera_router.routing.oracle import OraclePolicy

POLICIES: dict[str, PolicyFactory] = {
    AllSLM.name: AllSLM,
    AllLLM.name: AllLLM,
    RandomPolicy.name: RandomPolicy,
    MinionsPolicy.name: MinionsPolicy,
    HybridLLMPolicy.name: HybridLLMPolicy,
    OraclePolicy.name: OraclePolicy,
    LadderPolicy.name: LadderPolicy,
    # hera and its ablations (hera-no-sd, hera-no-cd, ...): routing/hera.py VARIANTS.
    **{name: hera_variant(name) for name in VARIANTS},
}


def policy_names() -> list[str]:
    return sorted(POLICIES)


def needs_estimators(name: str) -> bool:
    """Whether policy ``name`` consults the learned estimators (HERA and its ablations)."""
    return name in VARIANTS


def create_policy(name: str, settings: RoutingSettings) -> Policy:
    try:
        factory = POLICIES[name]
    except KeyError:
        raise UnknownPolicyError(name, list(POLICIES)) from None
    return factory(settings)
