"""The HTML map in a real browser: headless Chromium renders it, logs no console errors, shows
every stage column, and reads at every width a person uses: 1440, 1100 and 900 px and a phone
(390 px). At each width a layout check measures the page (no stage names, percentages or badges
overlapping or spilling out of their column, no text clipped) and a screenshot is left in
test-artifacts/journey-map-<width>.png for people to look at.

Chromium is Debian's `chromium` package; when it is missing the fixture installs it (as root,
with apt-get). The tests skip, with the reason, only when that is impossible.
"""

from __future__ import annotations

import html
import json
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


WIDTHS = (1440, 1100, 900, 390)

# Measures the page as laid out and writes what it found into the DOM for --dump-dom. Injected
# into a copy of the map only: the map itself ships without scripts.
LAYOUT_CHECK = """
<script>
(() => {
  const visible = (el) => {
    const style = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    return style.visibility !== 'hidden' && r.width > 0 && r.height > 0 && el.offsetParent !== null;
  };
  const box = (el) => el.getBoundingClientRect();
  const name = (el) => el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
    ? '.' + el.className.trim().split(/\\s+/).join('.') : '') + ' "' +
    (el.textContent || '').trim().slice(0, 40) + '"';
  const overlap = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 1 &&
    Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const problems = [];
  const cells = [...document.querySelectorAll(
    'table.matrix th, table.matrix td, .stage-card, .kpi')].filter(visible);
  for (const cell of cells) {
    const c = box(cell);
    for (const el of cell.querySelectorAll('*')) {
      if (!visible(el) || el.closest('svg')) continue;
      const r = box(el);
      if (r.left < c.left - 1 || r.right > c.right + 1) {
        problems.push('spills out of its column: ' + name(el));
      }
    }
    const texts = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    for (let node = texts.nextNode(); node; node = texts.nextNode()) {
      if (!node.textContent.trim() || !visible(node.parentElement)) continue;
      if (node.parentElement.closest('svg')) continue;
      range.selectNodeContents(node);
      for (const r of range.getClientRects()) {
        if (r.left < c.left - 1 || r.right > c.right + 1) {
          problems.push('spills out of its column: ' + name(node.parentElement));
        }
      }
    }
  }
  const heads = [...document.querySelectorAll('.stage-head .name, .stage-head .vol, ' +
    '.stage-head .volnote')].filter(visible);
  for (let i = 0; i < heads.length; i++) {
    for (let j = i + 1; j < heads.length; j++) {
      if (overlap(box(heads[i]), box(heads[j]))) {
        problems.push('overlap: ' + name(heads[i]) + ' / ' + name(heads[j]));
      }
    }
  }
  const inline = [...document.querySelectorAll(
    '.pain li > *, .fb > *, .channel > *, .kpi > *')].filter(visible);
  for (let i = 0; i < inline.length; i++) {
    for (let j = i + 1; j < inline.length; j++) {
      if (inline[i].parentElement === inline[j].parentElement &&
          overlap(box(inline[i]), box(inline[j]))) {
        problems.push('overlap: ' + name(inline[i]) + ' / ' + name(inline[j]));
      }
    }
  }
  for (const el of document.querySelectorAll('main *')) {
    if (!visible(el) || el.closest('svg, .scroll-x')) continue;
    const style = getComputedStyle(el);
    const clips = style.overflow !== 'visible' || style.webkitLineClamp !== 'none';
    if (clips && el.textContent.trim() && (el.scrollHeight > el.clientHeight + 1 ||
        el.scrollWidth > el.clientWidth + 1)) {
      problems.push('text cut off: ' + name(el));
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push('page wider than the window: ' + document.documentElement.scrollWidth + 'px');
  }
  const report = document.createElement('pre');
  report.id = 'layout-report';
  report.textContent = JSON.stringify({
    width: window.innerWidth,
    layout: [...document.querySelectorAll('#journey, #journey-cards')].filter(visible)
      .map((el) => el.id),
    stages: [...document.querySelectorAll('.stage-head .name')].filter(visible).length,
    problems: [...new Set(problems)],
  });
  document.body.appendChild(report);
})();
</script>
"""


def _layout(chromium: str, page: Path, profile: Path, width: int) -> dict[str, object]:
    """What LAYOUT_CHECK found on `page` in a `width` px wide window."""
    checked = page.with_name(f"checked-{width}.html")
    checked.write_text(
        page.read_text(encoding="utf-8").replace("</body>", LAYOUT_CHECK + "</body>"),
        encoding="utf-8",
    )
    result = _run(
        chromium, profile, f"--window-size={width},2400", "--hide-scrollbars", "--dump-dom",
        checked.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="layout-report">(.*?)</pre>', result.stdout, re.S)
    assert found, "the layout check did not run"
    report: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return report


@pytest.mark.parametrize("width", WIDTHS)
def test_reads_at_every_width(chromium: str, demo_map: Path, tmp_path: Path, width: int) -> None:
    """No overlapping stage names, percentages or badges, nothing spilling into the next column
    and no clipped text; wide screens get the stage × lane matrix, narrow ones stage cards."""
    report = _layout(chromium, demo_map, tmp_path / "profile", width)
    assert report["problems"] == [], f"{width} px: {report['problems']}"
    assert report["stages"] == len(default_taxonomy().stages)
    assert report["layout"] == (["journey"] if width >= 1200 else ["journey-cards"])
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"journey-map-{width}.png"
    shot.unlink(missing_ok=True)
    result = _run(
        chromium, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={width},2400",
        "--hide-scrollbars", demo_map.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]


def test_the_layout_check_catches_overlap(chromium: str, tmp_path: Path) -> None:
    """Negative control: the old map's failure (stage names colliding in narrow columns) and a
    clipped description are reported by the same check."""
    page = tmp_path / "cramped.html"
    page.write_text(
        "<!DOCTYPE html><html><body><main><table class='matrix' style='width:180px;"
        "table-layout:fixed'><tr>"
        + "".join(
            f"<th class='stage-head'><div class='name' style='white-space:nowrap'>{n}</div>"
            "<div class='desc' style='height:14px;overflow:hidden'>a long description that "
            "goes on and on</div></th>"
            for n in ("Consideration", "Purchase", "Delivery")
        )
        + "</tr></table></main></body></html>",
        encoding="utf-8",
    )
    report = _layout(chromium, page, tmp_path / "profile", 900)
    problems = " ".join(report["problems"])  # type: ignore[arg-type]
    assert "spills out of its column: div.name" in problems
    assert "text cut off: div.desc" in problems


# ---- flows and the compare view (issue 19) ----------------------------------------------------

# Writes where a section sits on the laid-out page, so a full-page screenshot can be cut to it.
WHERE = """
<script>
(() => {
  const out = {};
  for (const el of document.querySelectorAll('section[id]')) {
    const r = el.getBoundingClientRect();
    out[el.id] = [Math.round(r.top + window.scrollY), Math.round(r.height)];
  }
  const pre = document.createElement('pre');
  pre.id = 'where-report';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def _section_shot(
    chromium: str, page: Path, profile: Path, section: str, shot: Path, width: int = 1440
) -> None:
    """A screenshot of one section of `page` (found by id), cut from a full-height shot."""
    probe = page.with_name(f"where-{page.name}")
    probe.write_text(
        page.read_text(encoding="utf-8").replace("</body>", WHERE + "</body>"), encoding="utf-8"
    )
    result = _run(chromium, profile, f"--window-size={width},1200", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="where-report">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    top, height = json.loads(html.unescape(found.group(1)))[section]
    full = shot.with_name(f"full-{shot.name}")
    result = _run(
        chromium, profile, f"--screenshot={full}", f"--window-size={width},{top + height + 20}",
        "--hide-scrollbars", page.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0 and full.exists(), result.stderr[-2000:]
    from PIL import Image

    with Image.open(full) as image:
        image.crop((0, max(top - 10, 0), width, top + height + 10)).save(shot)
    full.unlink()


def test_flow_diagram_is_drawn(chromium: str, demo_map: Path, tmp_path: Path) -> None:
    """The 'How customers move' section: a Sankey with forward, same-stage and backward bands,
    the paths and the three signals with example paths; no console errors; a screenshot."""
    result = _run(
        chromium, tmp_path / "profile", "--enable-logging=stderr", "--v=0", "--dump-dom",
        demo_map.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_messages(result.stderr) == []
    dom = result.stdout
    flows = dom[dom.index('<section class="card" id="flows">') :]
    flows = flows[: flows.index("</section>")]
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="sankey"' in flows
    for direction in ("forward", "same", "backward"):
        assert f'class="band {direction}"' in flows
    for signal in ("backwards", "repeats", "churn"):
        assert f'id="signal-{signal}"' in flows
    assert flows.count('<details class="path">') >= 3  # example customers' paths
    assert "customers wrote in this period" in flows
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "journey-map-flows.png"
    shot.unlink(missing_ok=True)
    _section_shot(chromium, demo_map, tmp_path / "profile", "flows", shot)
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size[1] > 300
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 200  # drawn, not a blank band


@pytest.fixture(scope="module")
def compare_map(demo_map: Path) -> Path:
    """`cjm map --compare segment=plan` over the demo database."""
    from journey.journey_map import write_comparison

    engine = make_engine(f"sqlite:///{demo_map.parent / 'demo.db'}")
    path = write_comparison(
        engine, default_taxonomy(), "segment=plan", fmt="html", since=None, until=None,
        out_path=demo_map.parent / "compare.html",
    )  # fmt: skip
    engine.dispose()
    return path


@pytest.mark.parametrize("width", (1440, 390))
def test_compare_view(chromium: str, compare_map: Path, tmp_path: Path, width: int) -> None:
    """Segments side by side: a row block per plan, a column per stage, highlighted
    differences, a flow diagram per plan; no console errors, nothing wider than the window
    outside the scrolling table; screenshots."""
    result = _run(
        chromium, tmp_path / "profile", "--enable-logging=stderr", "--v=0",
        f"--window-size={width},2000", "--dump-dom", compare_map.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert _console_messages(result.stderr) == []
    dom = result.stdout
    segments = re.findall(r'<tbody class="segment" data-segment="([^"]+)"', dom)
    assert len(segments) >= 2
    columns = re.findall(r'<th data-stage="([a-z_]+)"', dom)
    assert columns == list(default_taxonomy().stage_names)
    assert 'class="hl"' in dom  # at least one difference highlighted
    assert dom.count('class="sankey"') == len(segments)
    assert "<script" not in compare_map.read_text(encoding="utf-8")
    report = _layout(chromium, compare_map, tmp_path / "profile", width)
    assert not [p for p in report["problems"] if "page wider" in p], report["problems"]  # type: ignore[union-attr]
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / f"journey-compare-{width}.png"
    shot.unlink(missing_ok=True)
    result = _run(
        chromium, tmp_path / "profile", f"--screenshot={shot}", f"--window-size={width},1800",
        "--hide-scrollbars", compare_map.as_uri(),
    )  # fmt: skip
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
