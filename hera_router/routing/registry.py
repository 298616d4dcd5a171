"""Policy name -> factory. Later policies (hera and its ablations, hybridllm, minions, oracle)
register here; the router task and the CLI only ever ask this module by name."""

from __future__ import annotations

from hera_router.config import RoutingSettings
from hera_router.routing.base import Policy, PolicyFactory, UnknownPolicyError
from hera_router.routing.baselines import AllLLM, AllSLM, RandomPolicy

POLICIES: dict[str, PolicyFactory] = {
    AllSLM.name: AllSLM,
    AllLLM.name: AllLLM,
    RandomPolicy.name: RandomPolicy,
}


def policy_names() -> list[str]:
    return sorted(POLICIES)


def create_policy(name: str, settings: RoutingSettings) -> Policy:
    try:
        factory = POLICIES[name]
    except KeyError:
        raise UnknownPolicyError(name, list(POLICIES)) from None
    return factory(settings)
