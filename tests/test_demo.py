"""`cjm demo` is what a newcomer runs first: it must work end to end, offline — the nightly job,
then a live webhook update; `cjm demo --serve` keeps it running for a person to look at."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from cli import main

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
LIVE_LINE = re.compile(
    r"^live: ticket #(\d+) got stage (\w[\w ]*) (\d+\.\d) s after the customer wrote$", re.M
)
LOOP_LINE = re.compile(
    r"^loop guard: cjm's own write fired the trigger (\d+) time\(s\) .* caused (\d+) further "
    r"write\(s\)$",
    re.M,
)


def test_demo_syncs_writes_back_and_renders_the_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workdir = tmp_path / "demo"
    with pytest.raises(SystemExit) as excinfo:
        main(["--quiet", "demo", "--tickets", "300", "--seed", "3", "--workdir", str(workdir)])
    out = capsys.readouterr().out
    assert excinfo.value.code == 0
    for ext in ("html", "md", "json"):
        path = workdir / "map" / f"journey-map.{ext}"
        assert path.exists() and path.stat().st_size > 500, path
        assert f"journey map: {path}" in out
    assert json.loads((workdir / "map" / "journey-map.json").read_text())
    assert "stage value on" in out
    # The live update: a customer wrote after the syncs, a signed webhook reached cjm serve, the
    # ticket got its stage within seconds, and cjm's own write started no loop.
    live = LIVE_LINE.search(out)
    assert live, out
    assert float(live.group(3)) < 30
    loop = LOOP_LINE.search(out)
    assert loop and loop.groups() == ("0", "0"), out
    assert "signing secret stored encrypted with CJM_DEMO_CREDENTIAL_KEY" in out
    # The demo's config names an environment variable, never the token itself.
    assert "token" not in (workdir / "cjm.toml").read_text().replace("oauth_token_env", "")


def test_demo_second_sync_writes_nothing(tmp_path: Path) -> None:
    from cli import run_demo

    result = run_demo(tmp_path / "demo", tickets=200, seed=5, environ={}, live=False)
    assert result.reports[0].written > 0
    assert [(r.planned, r.written, r.error) for r in result.second_run] == [(0, 0, None)]
    assert result.open_with_text > 0


def test_the_live_part_tags_the_ticket_the_customer_wrote_on(tmp_path: Path) -> None:
    from cli import run_demo

    result = run_demo(tmp_path / "demo", tickets=150, seed=9, environ={})
    live = result.live
    assert live is not None and live.server is None  # one-shot: cjm serve was stopped
    assert live.stage and live.stage.startswith("stage__") and live.seconds is not None
    assert live.stage_label == "Delivery"  # what the customer wrote is a delivery complaint
    assert (live.echo_webhooks, live.further_writes) == (0, 0)
    # The Fernet key was generated for the run and never written anywhere.
    config = (tmp_path / "demo" / "cjm.toml").read_text()
    assert 'credential_key_env = "CJM_DEMO_CREDENTIAL_KEY"' in config


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextmanager
def serving_demo(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """`cjm demo --serve` as a person runs it, in its own process: yields it and the URLs it
    printed once it serves; killed afterwards if the test did not stop it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CJM_")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from cli import main; main()", "demo", "--serve",
         "--tickets", "150", "--seed", "3", "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=Path(__file__).resolve().parents[1],
        # A shell without job control starts background commands with SIGINT ignored, and
        # the child would inherit that: give it the terminal's default, as a person's has.
        preexec_fn=_interruptible,
    )  # fmt: skip
    urls: dict[str, str] = {}
    try:
        deadline = time.monotonic() + 240
        assert process.stdout is not None
        while "simulator" not in urls and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            name, _, url = line.strip().partition(": http")
            if url:
                urls[name] = "http" + url
        assert {"sidebar preview", "live map", "labelling page", "health", "simulator"} <= set(
            urls
        ), (urls, process.poll())
        yield process, urls
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_demo_serve_prints_the_urls_serves_them_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with serving_demo(tmp_path / "demo") as (process, urls):
        with httpx.Client(trust_env=False, timeout=20) as client:
            health = client.get(urls["health"]).json()
            assert health["status"] == "ok" and [w["alive"] for w in health["workers"]] == [True]
            assert "<html" in client.get(urls["live map"]).text.lower()
            assert client.get(urls["labelling page"]).status_code == 200
            preview = client.get(urls["sidebar preview"])
            assert preview.status_code == 200 and "host/host.js" in preview.text
            ticket = urls["sidebar preview"].rsplit("=", 1)[1]
            assert f'"ticket_id": {ticket}' in preview.text
            assert "shared_secret" not in preview.text  # secure settings stay in the host
            bad = client.get(urls["sidebar preview"].replace(f"ticket={ticket}", "ticket=abc"))
            assert bad.status_code == 400 and "use ?ticket=123" in bad.json()["error"]
            missing = client.get(urls["simulator"] + "/_sim/preview/freshdesk")
            assert missing.status_code == 404 and "installed: zendesk" in missing.json()["error"]
            # The app itself, from the packaged zip, with the SDK stand-in swapped in.
            app_page = client.get(
                urls["simulator"].replace("127.0.0.1", "localhost")
                + "/_sim/preview/app/zendesk/assets/iframe.html"
            )
            assert app_page.status_code == 200 and "fake_zaf_sdk.js" in app_page.text
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "interrupted: nothing stored was lost; run it again"
    assert "Traceback" not in err


@pytest.mark.browser
@pytest.mark.slow
def test_the_sidebar_preview_shows_the_live_ticket_in_a_real_browser(tmp_path: Path) -> None:
    """What a person sees at the printed URL: the Zendesk app, in the simulator's host page, on
    the ticket the customer just wrote on — stage Delivery, with the customer's own sentence."""
    from tests.journey_map.test_browser import _install_chromium

    chromium = _install_chromium()
    if chromium is None:
        pytest.skip(
            "headless Chromium is not installed and could not be (apt-get install chromium)"
        )
    playwright_api = pytest.importorskip("playwright.sync_api")
    with serving_demo(tmp_path / "demo") as (process, urls):
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1100, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(urls["sidebar preview"])
            frame = page.frame_locator("#app-frame")
            stage = frame.locator("#cjm-stage-name")
            stage.wait_for(timeout=20_000)
            assert stage.inner_text() == "Delivery"
            assert "Where is my order?" in frame.locator("body").inner_text()
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "demo-sidebar-preview.png"), full_page=True)
            browser.close()
        assert not errors, errors
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
