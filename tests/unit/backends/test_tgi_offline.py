"""HF_HUB_OFFLINE=1 (set for every test in tests/conftest.py) must still block the Hub itself."""

from __future__ import annotations

import pytest
from huggingface_hub import constants, get_session
from huggingface_hub.errors import OfflineModeIsEnabled

from hera_router.backends.tgi import allow_self_hosted_servers_offline


def test_the_hub_stays_unreachable_after_allowing_self_hosted_servers() -> None:
    assert constants.is_offline_mode()
    allow_self_hosted_servers_offline()
    # The hook raises before anything is sent: no network is touched.
    with pytest.raises(OfflineModeIsEnabled):
        get_session().get("https://huggingface.co/api/models/HuggingFaceTB/SmolLM2-135M-Instruct")
