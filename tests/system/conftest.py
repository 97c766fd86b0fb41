"""Fixtures of the tests that run the service as a real process."""

from __future__ import annotations

import pytest

from tests.support.browsers import find_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """The system's Chromium, for tests in a real browser."""
    found = find_chromium()
    if found is None:
        pytest.skip(
            "chromium is not installed: `make test` installs it where it can "
            "(as root with apt-get); or run `apt-get install chromium`"
        )
    return found
