"""``model`` → routing profile: which policy an OpenAI-style request runs under.

- ``hera-router`` (``HERA_OPENAI__DEFAULT_MODEL``) is the server's default policy
  (``HERA_ROUTING__POLICY``);
- ``hera-router/<policy>`` (``hera-router/all-llm``, ``hera-router/random`` ...) is that policy;
  the bare policy name (``all-llm``) is accepted as an alias;
- any other model (``gpt-4o-mini`` in an existing batch file) runs under the default profile, so
  files written for OpenAI run unchanged; the requested name is kept with the request;
- ``metadata.policy`` (a line's body, a chat request's body, or the batch's metadata for lines
  that name no profile) overrides the model, and must name a known policy.

``GET /v1/models`` lists the profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from hera_router.config import Settings
from hera_router.routing.registry import policy_names

PREFIX = "hera-router/"


@dataclass(frozen=True, slots=True)
class Profile:
    model: str
    """The profile's id, answered as ``model`` in completions."""
    policy: str
    requested: str
    """The ``model`` the client sent."""


class Profiles:
    def __init__(self, settings: Settings) -> None:
        self.default_model = settings.openai.default_model
        self.default_policy = settings.routing.policy
        self.policies = frozenset(policy_names())

    def listed(self) -> list[tuple[str, str, str]]:
        """``(model id, policy, description)`` of every profile, the default first."""
        profiles = [(self.default_model, self.default_policy, f"the server's default policy ({self.default_policy})")]
        profiles += [
            (f"{PREFIX}{name}", name, f"every step routed by the {name} policy") for name in sorted(self.policies)
        ]
        return profiles

    def resolve(self, model: str, policy: str | None = None, fallback_policy: str | None = None) -> Profile:
        """The profile of ``model``; ``policy`` (from request metadata) overrides it, and
        ``fallback_policy`` (a batch's metadata) applies when the model names no profile.
        Raises ``ValueError`` with a sentence for an unknown ``policy``."""
        for given in (policy, fallback_policy):
            if given is not None and given not in self.policies:
                raise ValueError(
                    f"`metadata.policy` {given!r} is not a known policy; "
                    f"choose one of {', '.join(sorted(self.policies))}"
                )
        if policy is not None:
            return Profile(f"{PREFIX}{policy}", policy, model)
        named = model.removeprefix(PREFIX)
        if model != self.default_model and named in self.policies:
            return Profile(f"{PREFIX}{named}", named, model)
        chosen = fallback_policy if fallback_policy is not None and model != self.default_model else None
        if chosen is not None:
            return Profile(f"{PREFIX}{chosen}", chosen, model)
        return Profile(self.default_model, self.default_policy, model)
