"""Every config mistake is one line that names the key and the fix (exit code 2 at the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from journey.config import load_settings
from journey.errors import ConfigError

GOOD = """
[database]
url = "sqlite:///data/cjm.db"

[[sources]]
name = "acme"
kind = "zendesk"
subdomain = "acme"
email = "lead@acme.example"
token_env = "CJM_ZENDESK_TOKEN"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cjm.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_resolves_paths_and_secrets(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), {"CJM_ZENDESK_TOKEN": "s3cret"})
    assert settings.database_url == f"sqlite:///{tmp_path / 'data/cjm.db'}"
    zendesk = settings.zendesk_settings(settings.sources[0])
    assert zendesk.base_url == "https://acme.zendesk.com"
    assert zendesk.api_token == "s3cret"
    assert "s3cret" not in repr(zendesk) and "s3cret" not in repr(settings)


def test_database_url_from_environment_wins(tmp_path: Path) -> None:
    settings = load_settings(
        write(tmp_path, GOOD), {"CJM_DATABASE_URL": "postgresql+psycopg://u@h/db"}
    )
    assert settings.database_url == "postgresql+psycopg://u@h/db"


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    assert load_settings(None, {"CJM_CONFIG": str(path)}).config_path == path.resolve()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[database\nurl=", "is not valid TOML"),
        (GOOD + "\n[miner]\ntaxonmy = 'x'\n", "unknown key 'miner.taxonmy'"),
        (
            GOOD.replace('kind = "zendesk"', 'kind = "salesforce"'),
            "sources.acme.kind = 'salesforce' is not supported",
        ),
        (GOOD.replace('name = "acme"\n', ""), "missing key 'sources.0.name'"),
        (GOOD.replace('subdomain = "acme"\n', ""), "needs subdomain or base_url"),
        (GOOD + 'token = "abc"\n', "holds a secret in the file"),
        (
            GOOD + GOOD.split("[database]")[1].split('url = "sqlite:///data/cjm.db"')[1],
            "is used twice",
        ),
    ],
)
def test_config_mistakes_are_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_settings(write(tmp_path, text), {})
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found: create it"):
        load_settings(tmp_path / "nope.toml", {})


def test_missing_secret_variable_names_it(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), {})
    with pytest.raises(ConfigError, match="CJM_ZENDESK_TOKEN is not set"):
        settings.zendesk_settings(settings.sources[0])
