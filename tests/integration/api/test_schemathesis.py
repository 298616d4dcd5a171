"""schemathesis over ``/openapi.json`` against the real app on Postgres, with a tenant key (and the
admin token on ``/v1/admin``): no answer is a 5xx, and every answer has a documented status,
content type and schema.

Nothing consumes the producer's queue here (``memory://``), so a chat completion always waits out
its (shortened) timeout: that 504 is the documented answer to "the agent did not finish in time",
not a failure of input handling, and is the one 5xx allowed. The e2e suite runs chat completions
to the end with real workers. The example count is bounded so the run takes about a minute.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckContext
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hera_router.api.app import create_app
from hera_router.api.tenants import create_api_key, create_tenant
from hera_router.config import load_settings
from hera_router.db.migrate import upgrade
from tests.conftest import fresh_postgres_database
from tests.integration.api.conftest import api_settings, running_api

pytestmark = pytest.mark.postgres

ADMIN_TOKEN = "schemathesis-admin-token"
MAX_EXAMPLES = 60


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    with fresh_postgres_database("hera_fuzz") as url:
        upgrade(url)
        settings_ = api_settings(
            url,
            api={"admin_token": ADMIN_TOKEN, "max_upload_bytes": 64 * 1024},
            openai={"chat_timeout_s": 0.2, "poll_interval_s": 0.05},
            routing={"policy": "all-llm"},
        )
        with running_api(settings_) as api:
            name = f"fuzz-{uuid.uuid4().hex[:6]}"
            create_tenant(api.sessions, name)
            _, secret = create_api_key(api.sessions, name)
            yield api.url, secret


def _spec() -> dict[str, object]:
    """The served app's OpenAPI document; building the app opens no connection."""
    app = create_app(load_settings(database_url="sqlite://", broker_url="memory://", routing={"policy": "all-llm"}))
    try:
        return app.openapi()
    finally:
        app.state.hera.close()


schema = schemathesis.openapi.from_dict(_spec())


def not_a_server_error_but_the_chat_timeout(
    ctx: CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    if response.status_code < 500:
        return None
    if case.operation.path == "/v1/chat/completions" and response.status_code == 504:
        assert "HERA_OPENAI__CHAT_TIMEOUT_S" in response.text
        return None
    raise Failure(
        operation=case.operation.label,
        title=f"server error {response.status_code}",
        message=response.text[:2000],
    )


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_every_answer_documented(case: schemathesis.Case, served: tuple[str, str]) -> None:
    url, secret = served
    token = ADMIN_TOKEN if case.operation.path.startswith("/v1/admin") else secret
    case.call_and_validate(
        base_url=url,
        headers={"Authorization": f"Bearer {token}"},
        checks=[
            not_a_server_error_but_the_chat_timeout,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
        timeout=30,
    )
