"""Secrets never reach logs, errors or stdout, even when a library puts them in a message."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import respx

from cli import main
from journey.secrets import ScrubbingFilter, remember, scrub

SECRET = "zd-secret-4f9a1c77e2"


def test_scrub_masks_registered_values_and_auth_headers() -> None:
    remember(SECRET)
    assert scrub(f"GET /x?token={SECRET} failed") == "GET /x?token=*** failed"
    assert scrub("Authorization: Bearer abc.def.ghi") == "Authorization: Bearer ***"
    assert scrub("{'authorization': 'Basic bGVhZA=='}") == "{'authorization': 'Basic ***'}"


def test_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    remember(SECRET)
    logger = logging.getLogger("cjm.test")
    caplog.handler.addFilter(ScrubbingFilter())
    with caplog.at_level(logging.INFO, logger="cjm.test"):
        logger.info("retrying with %s", SECRET)
    assert SECRET not in caplog.text and "***" in caplog.text


def test_a_full_failing_sync_with_debug_logs_never_prints_the_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJM_ZENDESK_TOKEN", SECRET)
    config = tmp_path / "cjm.toml"
    config.write_text(
        '[database]\nurl = "sqlite:///cjm.db"\n[[sources]]\nname = "acme"\nkind = "zendesk"\n'
        'subdomain = "acme"\nemail = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n',
        encoding="utf-8",
    )
    with respx.mock(base_url="https://acme.zendesk.com") as mock:
        mock.get("/api/v2/ticket_fields.json").mock(
            return_value=httpx.Response(401, json={"error": f"bad token {SECRET}"})
        )
        with pytest.raises(SystemExit) as excinfo:
            main(["--config", str(config), "sync"])
    captured = capsys.readouterr()
    assert excinfo.value.code == 1
    assert SECRET not in captured.out + captured.err
    assert "401 from Zendesk: check CJM_ZENDESK_TOKEN" in captured.err
