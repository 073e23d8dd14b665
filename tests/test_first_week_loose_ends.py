"""The newcomer's smaller findings (#16), at the level a user meets them: exit code and one line.

A JSON server that is not a helpdesk, a simulator port that is taken or not a port, a `--since`
in the future, a failing run that would leave an empty database behind, and the Zendesk
token-retirement warning in every cron mail."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from simulator import ZendeskSimulator, bind, create_zendesk_app, serve_in_thread
from tests.cli_run import run

ZENDESK = """
[database]
url = "sqlite:///{db}"

[[sources]]
name = "zd"
kind = "zendesk"
base_url = "{base_url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
"""

FRESHDESK = """
[database]
url = "sqlite:///{db}"

[[sources]]
name = "fd"
kind = "freshdesk"
base_url = "{base_url}"
api_key_env = "CJM_FRESHDESK_KEY"
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJM_ZENDESK_TOKEN", "sim-token")
    monkeypatch.setenv("CJM_FRESHDESK_KEY", "sim-key")
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)


class _HelloWorld(BaseHTTPRequestHandler):
    """Answers {"hello": "world"} to everything (the finding's stand-in for "some JSON API")."""

    def _answer(self) -> None:
        body = json.dumps({"hello": "world"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def json_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HelloWorld)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def _config(tmp_path: Path, template: str, base_url: str) -> Path:
    path = tmp_path / "cjm.toml"
    path.write_text(template.format(db=tmp_path / "cjm.db", base_url=base_url), encoding="utf-8")
    return path


def _one_error(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith(("error:", "internal error"))]
    assert len(errors) == 1, err
    assert "Traceback" not in err and "KeyError" not in err
    return errors[0]


@pytest.mark.parametrize(("template", "vendor"), [(ZENDESK, "Zendesk"), (FRESHDESK, "Freshdesk")])
@pytest.mark.parametrize("command", [["setup-fields"], ["sync"], ["sync", "--no-writeback"]])
def test_a_json_server_that_is_not_the_helpdesk_is_named_as_such(
    tmp_path: Path,
    json_server: str,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    template: str,
    vendor: str,
    command: list[str],
) -> None:
    caplog.set_level(logging.WARNING)
    config = _config(tmp_path, template, json_server)
    code, _, err = run(["--config", str(config), *command], capsys)
    assert code == 1
    line = _one_error(err)
    assert f"this is not a {vendor} API" in line and "check base_url" in line
    # …and no "cannot list ticket fields" warning before it (a wrong server is not a permission)
    assert not [r for r in caplog.records if "cannot list ticket fields" in r.getMessage()]


def test_a_busy_simulator_port_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    taken = bind(0)
    port = taken.getsockname()[1]
    taken.listen()
    try:
        for kind in ("zendesk", "freshdesk"):
            code, _, err = run(["simulate", kind, "--port", str(port), "--tickets", "10"], capsys)
            assert code == 1
            line = _one_error(err)
            assert f"port {port} on 127.0.0.1 is already in use: pick another --port" in line
            assert "simulator on" not in err  # nothing claims to be serving
    finally:
        taken.close()


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_simulator_port_that_is_not_a_port_is_a_usage_error(
    port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["simulate", "zendesk", "--port", port, "--tickets", "10"], capsys)
    assert code == 2
    assert f"--port {port} is not a port: use 1–65535" in _one_error(err)


def test_sync_since_a_future_date_is_caught_before_any_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, ZENDESK, "http://127.0.0.1:9")  # nothing listens: no call made
    future = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    code, _, err = run(["--config", str(config), "sync", "--since", future], capsys)
    assert code == 2
    assert f"--since {future} is in the future" in _one_error(err)
    assert not (tmp_path / "cjm.db").exists()


@pytest.mark.parametrize("command", [["sync"], ["setup-fields"]])
def test_a_failing_run_leaves_no_empty_database_or_lock_behind(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    monkeypatch.delenv("CJM_ZENDESK_TOKEN")
    config = _config(tmp_path, ZENDESK, "http://127.0.0.1:9")
    code, _, err = run(["--config", str(config), *command], capsys)
    assert code == 2 and "CJM_ZENDESK_TOKEN is not set" in _one_error(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cjm.toml"]


def test_the_token_retirement_warning_comes_once_a_day_not_every_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    sim = ZendeskSimulator.generate(tickets=20, seed=3)
    with serve_in_thread(create_zendesk_app(sim)) as server:
        config = _config(tmp_path, ZENDESK, server.url)
        warnings = []
        for _ in range(2):
            caplog.clear()
            with caplog.at_level(logging.WARNING):
                code, _, err = run(["--config", str(config), "sync", "--no-writeback"], capsys)
            assert code == 0, err
            warnings.append([r for r in caplog.records if "stop working" in r.getMessage()])
    assert len(warnings[0]) == 1 and "2027-04-30" in warnings[0][0].getMessage()
    assert warnings[1] == []  # the second run of the day stays quiet
