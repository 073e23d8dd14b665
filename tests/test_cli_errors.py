"""What a support lead sees when something is wrong: one line on stderr, the right exit code,
nothing already stored lost."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from tests.cli_run import run

CONFIG = """
[database]
url = "sqlite:///cjm.db"

[[sources]]
name = "acme"
kind = "zendesk"
{where}
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CJM_ZENDESK_TOKEN", "super-secret-token")
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    monkeypatch.delenv("CJM_DATABASE_URL", raising=False)
    path = tmp_path / "cjm.toml"
    path.write_text(CONFIG.format(where='subdomain = "acme"'), encoding="utf-8")
    return path


def test_missing_config_is_exit_2_with_the_fix(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("CJM_CONFIG", raising=False)
    code, out, err = run(["--config", str(tmp_path / "missing.toml"), "sync"], capsys)
    assert code == 2
    assert err.strip().startswith("error: config file")
    assert "not found: create it" in err and len(err.strip().splitlines()) == 1
    assert out == ""


def test_unknown_key_is_exit_2(config: Path, capsys) -> None:
    config.write_text(config.read_text() + "\n[miner]\nmodle = 'x'\n", encoding="utf-8")
    code, _, err = run(["--config", str(config), "sync"], capsys)
    assert code == 2 and "unknown key 'miner.modle'" in err


def test_missing_secret_variable_is_exit_2(config: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("CJM_ZENDESK_TOKEN")
    code, _, err = run(["--config", str(config), "sync"], capsys)
    assert code == 2 and "environment variable CJM_ZENDESK_TOKEN is not set" in err


def test_unknown_option_is_exit_2(config: Path, capsys) -> None:
    code, _, err = run(["--config", str(config), "sync", "--frobnicate"], capsys)
    assert code == 2 and "No such option" in err


def test_bad_date_is_exit_2(config: Path, capsys) -> None:
    code, _, err = run(["--config", str(config), "sync", "--since", "yesterday"], capsys)
    assert code == 2 and "--since 'yesterday' is not a date: use YYYY-MM-DD" in err


def test_unreachable_server_is_exit_1(config: Path, capsys) -> None:
    config.write_text(CONFIG.format(where='base_url = "http://127.0.0.1:9"'), encoding="utf-8")
    code, _, err = run(["--config", str(config), "sync"], capsys)
    assert code == 1
    assert "cannot reach Zendesk at http://127.0.0.1:9" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, "error: acme: 401 from Zendesk: check CJM_ZENDESK_TOKEN"),
        (403, "error: acme: 403 from Zendesk on ticket_fields: the user behind"),
        (404, "error: acme: 404 from Zendesk on ticket_fields: check base_url"),
    ],
)
def test_http_errors_are_one_line_exit_1(config: Path, capsys, status: int, expected: str) -> None:
    with respx.mock(base_url="https://acme.zendesk.com", assert_all_called=True) as mock:
        # The sync's first call lists the ticket fields (cjm's own, and titles for segments).
        mock.get("/api/v2/ticket_fields.json").mock(
            return_value=httpx.Response(status, json={"error": "x"})
        )
        code, out, err = run(["--config", str(config), "--quiet", "sync"], capsys)
    assert code == 1
    assert expected in err
    assert "super-secret-token" not in out + err
    assert "Traceback" not in err


def test_setup_fields_403_names_admin_rights(config: Path, capsys) -> None:
    with respx.mock(base_url="https://acme.zendesk.com") as mock:
        mock.get("/api/v2/ticket_fields.json").mock(return_value=httpx.Response(403, json={}))
        code, _, err = run(["--config", str(config), "setup-fields"], capsys)
    assert code == 1 and "need an admin" in err
