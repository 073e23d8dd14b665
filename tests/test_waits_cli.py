"""What a support lead sees while cjm waits: a hung server ends the run in the configured time
with one line, and a missing Journey field is reported before the pull, not after it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import respx

from tests.cli_run import run

CONFIG = """
[database]
url = "sqlite:///{db}"

[[sources]]
name = "acme"
kind = "zendesk"
base_url = "{base_url}"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"

[sources.limits]
timeout_seconds = 0.5
give_up_after_seconds = 2
"""


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CJM_ZENDESK_TOKEN", "super-secret-token")
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)


@pytest.fixture
def hung_server() -> Iterator[str]:
    """Accepts connections and never answers (the finding's `evil.py slow`)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def _config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "cjm.toml"
    path.write_text(CONFIG.format(db=tmp_path / "cjm.db", base_url=base_url), encoding="utf-8")
    return path


def test_a_hung_server_ends_the_run_with_one_line_in_the_configured_time(
    tmp_path: Path, hung_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    code, _, err = run(["--config", str(_config(tmp_path, hung_server)), "sync"], capsys)
    elapsed = time.monotonic() - started
    assert code == 1
    assert "retrying in" in err  # each retry was announced while it happened
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Zendesk gave no usable answer for" in errors[0]
    assert "give_up_after_seconds" in errors[0]
    assert elapsed < 15
    assert "Traceback" not in err and "super-secret-token" not in err


def test_a_missing_journey_field_fails_before_the_pull(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, "https://acme.zendesk.com")
    with respx.mock(base_url="https://acme.zendesk.com", assert_all_called=False) as mock:
        mock.get("/api/v2/ticket_fields.json").mock(
            return_value=httpx.Response(200, json={"ticket_fields": [], "next_page": None})
        )
        export = mock.get(path__startswith="/api/v2/incremental/").mock(
            return_value=httpx.Response(500)
        )
        code, _, err = run(["--config", str(config), "sync"], capsys)
    assert code == 1
    assert "run `cjm setup-fields --source acme`" in err
    assert not export.called  # nothing was pulled before the check
