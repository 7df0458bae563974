"""Fixtures of both tiers: tiny random transformers (seconds) and a small slice of the demo data.
The unit tier's own are in tests/unit/conftest.py, the e2e tier's (the real demo bot, servers, databases,
the browser) in tests/e2e/conftest.py; plain helpers are in tests/helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers.constants import DATA
from tests.helpers.tiny import make_tiny_encoder_dir, slice_per_intent

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no model hub here: fail fast instead of retrying
TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    """Each test is marked with its tier (`unit` or `e2e`, the folder it is in): `pytest -m unit` anywhere."""
    for item in items:
        path = Path(item.path).resolve()
        if TESTS in path.parents and path.relative_to(TESTS).parts[0] in ("unit", "e2e"):
            item.add_marker(path.relative_to(TESTS).parts[0])


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory) -> Path:
    return make_tiny_encoder_dir(tmp_path_factory.mktemp("tiny-teacher"), hidden=48, layers=2, seed=1)


@pytest.fixture(scope="session")
def tiny_student_dir(tmp_path_factory) -> Path:
    return make_tiny_encoder_dir(tmp_path_factory.mktemp("tiny-student"), hidden=32, layers=4, seed=2)


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """8 training and 2 test messages per intent of the demo data."""
    folder = tmp_path_factory.mktemp("small-data")
    return (slice_per_intent(DATA / "train.jsonl", folder / "train.jsonl", 8),
            slice_per_intent(DATA / "test.jsonl", folder / "test.jsonl", 2))
