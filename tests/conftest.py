"""Shared fixtures. Real data lives in ../shared/data beside the checkout; tests that need it
skip with a clear message when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
AMAZON_FILE = SHARED_DATA / "amazon-musical-instruments-2014" / "reviews_Musical_Instruments_5.json.gz"


@pytest.fixture(scope="session")
def amazon_file() -> Path:
    if not AMAZON_FILE.exists():
        pytest.skip(f"real data not found at {AMAZON_FILE} (../shared/data is absent on this machine)")
    return AMAZON_FILE
