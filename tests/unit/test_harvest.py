"""The harvest on a SQLite store (the cases of tests/helpers/cases/harvest.py; tests/e2e/test_harvest.py runs
them on PostgreSQL), and its result as plain data."""

from __future__ import annotations

import distill.harvest
from distill.harvest import Harvest
from tests.helpers.cases.harvest import HarvestCases


class TestHarvestOnSQLite(HarvestCases):
    """The harvest cases on a SQLite file each."""


def test_a_harvest_is_plain_typed_data():
    harvest = Harvest()
    assert harvest.dropped == dict.fromkeys(distill.harvest.DROP_REASONS, 0) and harvest.thumbs_up == 0
