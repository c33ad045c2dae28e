"""Shared fixtures: real image files written once per session, hypothesis settings."""

from __future__ import annotations

import os

# Charts must work without a display; set before anything imports matplotlib.
os.environ.setdefault("MPLBACKEND", "Agg")

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from images import Sample, write_catalogue, write_unreadable
from smartdownsample.cli import CACHE_ENV
from smartdownsample.synthetic import SyntheticDataset, make_dataset

settings.register_profile(
    "smartdownsample",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "smartdownsample"))

DATASET_SIZE = 120
"""Images in the shared synthetic data set: two extraction batches of 64, a
dozen buckets, fast to write (about half a second)."""


@pytest.fixture(scope="session")
def catalogue(tmp_path_factory: pytest.TempPathFactory) -> list[Sample]:
    """One readable file per format and mode, with the colour it must show."""
    return write_catalogue(tmp_path_factory.mktemp("catalogue"))


@pytest.fixture(scope="session")
def unreadable(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every kind of unreadable input, by kind."""
    return write_unreadable(tmp_path_factory.mktemp("unreadable"))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """A small synthetic camera-trap data set (crops, bursts, night IR, rare scenes)."""
    return make_dataset(tmp_path_factory.mktemp("synthetic"), DATASET_SIZE, seed=7)


@pytest.fixture
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The command line's feature cache in the test's own folder, never the user's real one
    (modules use it with ``pytestmark = pytest.mark.usefixtures("private_cache")``)."""
    path = tmp_path / "user-cache"
    monkeypatch.setenv(CACHE_ENV, str(path))
    return path


PHOTOS = 60
"""Images in :func:`photos`."""


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """photos/<location>/<deployment>/IMG_<n>.JPG, in a path with a space; tests only read it
    (the copy-safety and journal tests check that nothing in it changes). A module may
    override it with a set of its own size (``test_cli.py``)."""
    root = tmp_path_factory.mktemp("photo set") / "deer"
    make_dataset(root, PHOTOS, seed=5, n_locations=3)
    return root
