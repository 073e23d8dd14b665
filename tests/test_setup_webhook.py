"""`cjm setup-webhook` against the simulator over real HTTP: what a Zendesk admin would find in
the account afterwards, and what `cjm serve` can read back from the theme database."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.engine import Engine

from connectors.zendesk_webhooks import TRIGGER_TITLE, WEBHOOK_NAME
from journey.config import load_settings
from journey.credentials import webhook_secret
from journey.db import session_scope
from journey.models import Credential
from simulator import RunningServer, ZendeskSimulator, create_zendesk_app, serve_in_thread
from tests.cli_run import run
from tests.webhook_receiver import running_receiver

KEY = Fernet.generate_key().decode()
PUBLIC = "https://cjm.acme.example"


@dataclass
class Setup:
    sim: ZendeskSimulator
    server: RunningServer
    config: Path
    engine: Engine
    env: dict[str, str]

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        return run(["--config", str(self.config), "setup-webhook", *args], capsys)

    def hooks(self):
        return list(self.sim.webhooks.webhooks.values())

    def triggers(self):
        return list(self.sim.webhooks.triggers.values())


def _config(path: Path, base_url: str, extra: str = "") -> Path:
    path.write_text(
        f'[[sources]]\nname = "acme"\nkind = "zendesk"\nbase_url = "{base_url}"\n'
        'email = "lead@acme.example"\ntoken_env = "CJM_ZENDESK_TOKEN"\n'
        f'credential_key_env = "CJM_CREDENTIAL_KEY"\n{extra}'
        '[[sources]]\nname = "fresh"\nkind = "freshdesk"\nbase_url = "http://127.0.0.1:9"\n'
        'api_key_env = "CJM_FRESHDESK_KEY"\nwebhook_secret_env = "CJM_FRESHDESK_HOOK"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def setup(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    sim = ZendeskSimulator.generate(tickets=5, seed=2)
    env = {
        "CJM_ZENDESK_TOKEN": "sim-token",
        "CJM_CREDENTIAL_KEY": KEY,
        "CJM_FRESHDESK_KEY": "fd-key",
        "CJM_DATABASE_URL": engine.url.render_as_string(hide_password=False),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CJM_FRESHDESK_HOOK", raising=False)
    with serve_in_thread(create_zendesk_app(sim)) as server:
        yield Setup(sim, server, _config(tmp_path / "cjm.toml", server.url), engine, env)


def test_setup_creates_webhook_and_trigger_and_stores_the_secret_encrypted(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = setup.cli(capsys, "--source", "acme", "--url", PUBLIC)
    assert code == 0, err
    (hook,) = setup.hooks()
    (trigger,) = setup.triggers()
    assert hook.name == WEBHOOK_NAME and hook.endpoint == f"{PUBLIC}/hooks/zendesk/acme"
    assert trigger.title == TRIGGER_TITLE
    assert trigger.actions[0]["value"][0] == hook.id
    assert f"webhook {hook.id} created" in out and f"trigger {trigger.id} created" in out
    # Stored encrypted: the ciphertext is not the secret, and the secret is never printed.
    with session_scope(setup.engine) as session:
        row = session.execute(
            select(Credential).where(
                Credential.source_name == "acme", Credential.kind == "webhook_secret"
            )
        ).scalar_one()
    assert hook.secret not in row.ciphertext and hook.secret not in out + err
    settings = load_settings(setup.config, setup.env)
    assert webhook_secret(settings, setup.engine, settings.source("acme")[0]) == hook.secret


def test_running_setup_twice_duplicates_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.cli(capsys, "--source", "acme", "--url", PUBLIC)[0] == 0
    first = dict(setup.sim.requests)
    code, out, _ = setup.cli(capsys, "--source", "acme", "--url", PUBLIC)
    assert code == 0
    assert len(setup.hooks()) == 1 and len(setup.triggers()) == 1
    assert "unchanged" in out and "created" not in out
    again = {k: v - first.get(k, 0) for k, v in setup.sim.requests.items()}
    writes = {k: v for k, v in again.items() if v and not k.startswith("GET")}
    assert writes == {}  # the second run only reads: 3 GETs (webhooks, secret, triggers)
    assert sum(again.values()) == 3


def test_a_new_url_updates_the_webhook_in_place(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.cli(capsys, "--source", "acme", "--url", PUBLIC)[0] == 0
    code, out, _ = setup.cli(capsys, "--source", "acme", "--url", "https://new.acme.example/")
    assert code == 0 and "updated" in out
    (hook,) = setup.hooks()
    assert hook.endpoint == "https://new.acme.example/hooks/zendesk/acme"


def test_a_trigger_an_admin_edited_is_put_back(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.cli(capsys, "--source", "acme", "--url", PUBLIC)[0] == 0
    (trigger,) = setup.triggers()
    trigger.conditions = {"all": [{"field": "update_type", "operator": "is", "value": "Change"}]}
    code, out, _ = setup.cli(capsys, "--source", "acme", "--url", PUBLIC)
    assert code == 0 and f"trigger {trigger.id} updated" in out
    assert len(setup.triggers()) == 1
    assert {c["field"] for c in setup.triggers()[0].conditions["all"]} == {
        "comment_is_public",
        "role",
    }


def test_public_url_comes_from_the_serve_section(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    text = setup.config.read_text(encoding="utf-8")
    setup.config.write_text(text + f'[serve]\npublic_url = "{PUBLIC}"\n', encoding="utf-8")
    assert setup.cli(capsys, "--source", "acme")[0] == 0
    assert setup.hooks()[0].endpoint == f"{PUBLIC}/hooks/zendesk/acme"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cjm.acme.example", "is not https"),
        ("ftp://cjm.acme.example", "is not a URL"),
        ("cjm.acme.example", "is not a URL"),
    ],
)
def test_a_url_helpdesks_cannot_call_is_refused_before_any_api_call(
    setup: Setup, capsys: pytest.CaptureFixture[str], url: str, message: str
) -> None:
    code, _, err = setup.cli(capsys, "--source", "acme", "--url", url)
    assert code == 2 and message in err and "Traceback" not in err
    assert setup.hooks() == [] and sum(setup.sim.requests.values()) == 0


def test_localhost_http_is_allowed(setup: Setup, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = setup.cli(capsys, "--source", "acme", "--url", "http://127.0.0.1:8787")
    assert code == 0, err
    assert setup.hooks()[0].endpoint == "http://127.0.0.1:8787/hooks/zendesk/acme"


def test_no_credential_key_is_a_clear_error_and_creates_nothing(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = setup.config.read_text(encoding="utf-8")
    setup.config.write_text(
        text.replace('credential_key_env = "CJM_CREDENTIAL_KEY"\n', ""), encoding="utf-8"
    )
    code, _, err = setup.cli(capsys, "--source", "acme", "--url", PUBLIC)
    assert code == 2 and "credential_key_env is not set" in err
    monkeypatch.setenv("CJM_CREDENTIAL_KEY", "not-a-fernet-key")
    setup.config.write_text(text, encoding="utf-8")
    code, _, err = setup.cli(capsys, "--source", "acme", "--url", PUBLIC)
    assert code == 2 and "is not a Fernet key" in err
    assert setup.hooks() == [] and setup.triggers() == []


def test_api_errors_are_one_line_and_exit_1(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CJM_ZENDESK_TOKEN", "wrong-token")
    code, _, err = setup.cli(capsys, "--source", "acme", "--url", PUBLIC)
    assert code == 1 and "401" in err and "CJM_ZENDESK_TOKEN" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_the_oauth_pair_and_the_webhook_secret_live_side_by_side(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    from connectors.settings import OAuthTokens
    from journey.credentials import TokenVault

    vault = TokenVault(setup.engine, "acme", KEY, "CJM_CREDENTIAL_KEY", origin="o")
    vault.save(OAuthTokens("access", "refresh", None))
    assert setup.cli(capsys, "--source", "acme", "--url", PUBLIC)[0] == 0
    assert setup.cli(capsys, "--source", "acme", "--url", PUBLIC)[0] == 0
    assert vault.load() == OAuthTokens("access", "refresh", None)
    settings = load_settings(setup.config, setup.env)
    secret = webhook_secret(settings, setup.engine, settings.source("acme")[0])
    assert secret == setup.hooks()[0].secret


def test_the_environment_variable_overrides_the_stored_secret(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    assert setup.cli(capsys, "--source", "acme", "--url", PUBLIC)[0] == 0
    text = setup.config.read_text(encoding="utf-8")
    setup.config.write_text(
        text.replace(
            'credential_key_env = "CJM_CREDENTIAL_KEY"\n',
            'credential_key_env = "CJM_CREDENTIAL_KEY"\nwebhook_secret_env = "CJM_ZD_HOOK"\n',
            1,
        ),
        encoding="utf-8",
    )
    settings = load_settings(setup.config, {**setup.env, "CJM_ZD_HOOK": "from-the-env"})
    assert webhook_secret(settings, setup.engine, settings.source("acme")[0]) == "from-the-env"


def test_freshdesk_prints_the_rule_without_the_secret(
    setup: Setup, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = setup.cli(capsys, "--source", "fresh", "--url", PUBLIC)
    assert code == 2 and "CJM_FRESHDESK_HOOK is not set" in err
    monkeypatch.setenv("CJM_FRESHDESK_HOOK", "shared-secret-value")
    code, out, err = setup.cli(capsys, "--source", "fresh", "--url", PUBLIC)
    assert code == 0, err
    assert f"{PUBLIC}/hooks/freshdesk/fresh" in out and "$CJM_FRESHDESK_HOOK" in out
    assert "shared-secret-value" not in out + err


def test_after_setup_a_customer_comment_arrives_signed_with_the_stored_secret(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole doorbell: setup-webhook against the simulator, then a customer writes and the
    request that reaches the endpoint verifies with the secret `cjm serve` reads back."""
    with running_receiver() as receiver:
        base = receiver.url.removesuffix("/hooks/zendesk/acme")
        assert setup.cli(capsys, "--source", "acme", "--url", base)[0] == 0
        ticket = setup.sim.open_tickets_with_customer_text()[0]
        setup.sim.add_comment(ticket, setup.sim.ticket(ticket).requester_id, "Any news?")
        (got,) = receiver.wait_for(1)
        settings = load_settings(setup.config, setup.env)
        secret = webhook_secret(settings, setup.engine, settings.source("acme")[0])
    assert secret is not None
    timestamp = got.headers["x-zendesk-webhook-signature-timestamp"]
    mac = hmac.new(secret.encode(), timestamp.encode() + got.body, hashlib.sha256)
    assert got.headers["x-zendesk-webhook-signature"] == base64.b64encode(mac.digest()).decode()
    assert got.json["ticket_id"] == str(ticket)
