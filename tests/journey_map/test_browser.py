"""The HTML map in a real browser: headless Chromium renders it, logs no console errors, shows
every stage column, and leaves a 1440 px wide screenshot in test-artifacts/ for people to look at.

Chromium is Debian's `chromium` package; when it is missing the fixture installs it (as root,
with apt-get). The tests skip, with the reason, only when that is impossible.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from journey.db import make_engine
from journey.journey_map import write_map
from miner import default_taxonomy
from tests.journey_map.synthetic import generate

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _install_chromium() -> str | None:
    """Path of a Chromium binary, installing Debian's package if needed and possible."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        result = subprocess.run(command, env=env, capture_output=True, timeout=900, check=False)
        if result.returncode != 0:
            return None
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = _install_chromium()
    if binary is None:
        pytest.skip(
            "headless Chromium is not installed and could not be installed "
            "(needs root and apt-get: apt-get install -y chromium)"
        )
    return binary


@pytest.fixture(scope="module")
def demo_map(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The map of a demo-sized synthetic database (20,000 conversations, planted spikes)."""
    folder = tmp_path_factory.mktemp("browser")
    engine = make_engine(f"sqlite:///{folder / 'demo.db'}")
    SQLModel.metadata.create_all(engine)
    generate(engine, 20_000, seed=7)
    path = write_map(
        engine, default_taxonomy(), fmt="html", since=None, until=None, out_path=folder / "map.html"
    )
    engine.dispose()
    return path


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _console_messages(stderr: str) -> list[str]:
    """Page console output as Chromium logs it with --enable-logging=stderr
    (`…:INFO:CONSOLE:1] "message", source: …`; older builds wrote `CONSOLE(1)`)."""
    return [line for line in stderr.splitlines() if re.search(r":CONSOLE[(:]\d+", line)]


def test_renders_every_stage_column(chromium: str, demo_map: Path, tmp_path: Path) -> None:
    result = _run(chromium, tmp_path / "profile", "--dump-dom", demo_map.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<h1>Customer journey map</h1>" in dom
    columns = re.findall(r'<th class="stage-head" data-stage="([a-z_]+)"', dom)
    assert columns == list(default_taxonomy().stage_names)
    for section in ("journey", "opportunities", "heatmap", "trends", "themes"):
        assert f'id="{section}"' in dom
    assert dom.count("<svg") >= 4
    assert "Payment failures</b>, week of" in dom  # the planted spike is listed


def test_no_console_errors_and_a_screenshot(chromium: str, demo_map: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "journey-map.png"
    shot.unlink(missing_ok=True)
    result = _run(
        chromium,
        tmp_path / "profile",
        "--enable-logging=stderr",
        "--v=0",
        f"--screenshot={shot}",
        "--window-size=1440,2400",
        "--hide-scrollbars",
        demo_map.as_uri(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_messages(result.stderr) == []
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1440, 2400)
        colours = image.convert("RGB").resize((144, 240)).getcolors(maxcolors=100_000)
        assert colours is not None and len(colours) > 200  # drawn, not a blank page


def test_console_error_detection_works(chromium: str, tmp_path: Path) -> None:
    """Negative control: a page that logs an error is caught by the same check."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><title>x</title><script>console.error('boom'); undefinedFn();</script>",
        encoding="utf-8",
    )
    result = _run(
        chromium, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom",
        page.as_uri(),
    )  # fmt: skip
    messages = _console_messages(result.stderr)
    assert any("boom" in m for m in messages), result.stderr[-2000:]
