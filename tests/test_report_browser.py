"""Look at the reports as a person would: render them in headless Chromium and check the picture.

Catches what string checks cannot: a page that does not render, images that do not
decode, CSS that hides everything. Skipped where Chromium is not installed
(`apt-get install chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import minimal
from twin.report.compare import write_compare_report
from twin.runner import run_scenario

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium")]


def screenshot(page: Path, png: Path, height: int = 4000) -> Image.Image:
    """Full-width screenshot of a local HTML file; no network, throw-away profile."""
    profile = tempfile.mkdtemp(prefix="twin-chromium-")
    try:
        subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size=1400,{height}",
                        f"--screenshot={png}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return Image.open(png).convert("RGB")


def assert_rendered(image: Image.Image, png: Path) -> None:
    """A real page: big enough, many colours, and content (not background) all the way down the top screen."""
    assert png.stat().st_size > 60_000
    pixels = np.asarray(image, dtype=float)
    assert pixels.std() > 20
    assert len(np.unique(pixels.reshape(-1, 3)[::97], axis=0)) > 50
    rows_with_content = (pixels.std(axis=(1, 2)) > 5).mean()
    assert rows_with_content > 0.5


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("base")
    whatif = tmp_path_factory.mktemp("whatif")
    run_scenario(minimal(**{"run.sample_interval": "10m"}), base, progress=False)
    run_scenario(minimal(**{"run.sample_interval": "10m", "name": "minimal-whatif",
                            "topology.sites[LCG.PIC.es].ces[pic-ce].slots": 10}), whatif, progress=False)
    return base, whatif


def test_run_report_renders(runs: tuple[Path, Path], tmp_path: Path) -> None:
    png = tmp_path / "report.png"
    assert_rendered(screenshot(runs[0] / "report.html", png), png)


def test_compare_report_renders(runs: tuple[Path, Path], tmp_path: Path) -> None:
    page = write_compare_report(runs[0], runs[1], tmp_path / "compare.html")
    png = tmp_path / "compare.png"
    assert_rendered(screenshot(page, png), png)
