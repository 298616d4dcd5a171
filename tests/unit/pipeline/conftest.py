from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.pipeline.harness import Harness, make_harness, migrated_template


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return migrated_template(tmp_path_factory.mktemp("pipeline-template"))


@pytest.fixture
def harness_factory(tmp_path: Path, template_db: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def build(**overrides: Any) -> Harness:
        harness = make_harness(tmp_path / f"h{len(made)}", template_db, **overrides)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        harness.close()
