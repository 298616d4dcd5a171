"""The graph's cancel cascade and the listing without node requests, on Postgres.

The same tests as the unit tier's (``tests/unit/pipeline/test_graph.py``), hop by hop with a
recording broker, over a fresh migrated Postgres database per test instead of SQLite: the
cascade's ``IN`` over the graph's node requests and the listing's ``NOT EXISTS`` on
``plan_nodes.child_id`` run on the server the deployment uses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from hera_router.db.migrate import upgrade
from tests.conftest import fresh_postgres_database
from tests.unit.pipeline.harness import Harness, make_harness
from tests.unit.pipeline.test_graph import (  # noqa: F401 - collected here, on Postgres
    test_cancelling_a_batch_cancels_the_node_requests_of_its_graph_requests,
    test_cancelling_a_graph_request_cancels_its_node_requests,
    test_node_requests_are_left_out_of_the_tenants_listing_unless_asked,
)


@pytest.fixture
def harness_factory(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []
    with ExitStack() as stack:

        def build(**overrides: Any) -> Harness:
            url = stack.enter_context(fresh_postgres_database("hera_graph"))
            upgrade(url)
            harness = make_harness(tmp_path / f"h{len(made)}", tmp_path, database_url=url, **overrides)
            made.append(harness)
            return harness

        yield build
        for harness in made:
            harness.close()
