"""The system's Chromium, for tests that open pages in a real browser, and where they leave
what they saw."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Chromium's own flags for a headless run in a container, with no network beyond loopback.
CHROMIUM_FLAGS = (
    "--no-sandbox",  # Chromium's sandbox refuses to run as root.
    "--disable-gpu",
    # Without these Chromium dials out at start, and the closed network refuses it.
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Containers often have a tiny /dev/shm, where Chromium's renderers crash.
    "--disable-dev-shm-usage",
)
# Where a test run leaves what people would look at: screenshots of the pages.
OUTPUT_ENV = "SHORTENER_TEST_OUTPUT"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "test-output"


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def output_dir(*parts: str) -> Path:
    """A folder under the test run's output folder (SHORTENER_TEST_OUTPUT, or test-output/ at
    the top of the checkout)."""
    folder = Path(os.environ.get(OUTPUT_ENV) or DEFAULT_OUTPUT).joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
