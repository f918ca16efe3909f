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


@pytest.fixture(scope="session")
def render_html():
    """Render an HTML file in headless Chromium and return the screenshot's path (1280 x 2400).

    Skips when Chromium is not installed (``apt-get install -y chromium``); fails when it does
    not render within 90 s or writes no screenshot.
    """
    import shutil
    import subprocess
    import tempfile

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the HTML checks without it still ran")

    def render(html_path: Path, png: Path) -> Path:
        with tempfile.TemporaryDirectory() as profile:
            cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   f"--user-data-dir={profile}", f"--screenshot={png}", "--window-size=1280,2400", html_path.as_uri()]
            try:
                subprocess.run(cmd, capture_output=True, timeout=90, check=False)
            except subprocess.TimeoutExpired:
                pytest.fail("chromium did not render the report within 90 s")
        assert png.exists(), "chromium wrote no screenshot"
        return png

    return render
