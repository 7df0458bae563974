"""Waiting for something another process does, with a deadline and a message that says what never came."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def poll(check: Callable[[], T], timeout: float = 60.0, what: str = "condition", every: float = 0.1) -> T:
    """`check()`'s first truthy result; the test fails when none came within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(every)
    pytest.fail(f"{what} not reached within {timeout} s")
