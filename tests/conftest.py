"""Shared fixtures: the golden reference files in ../shared/fixtures (see its README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared; missing means skip locally but fail in CI (CI=true)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{path} is missing: CI must have ../shared beside the clone")
        pytest.skip(f"{path} not available")
    return path


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return shared_path("fixtures")


@pytest.fixture(scope="session")
def maps_dir() -> Path:
    return shared_path("data", "maps_128")
