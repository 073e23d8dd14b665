"""`cjm setup-webhook`: point a helpdesk's webhook at `cjm serve`, once, idempotently.

Zendesk: the connector creates or updates cjm's webhook and trigger (connectors/
zendesk_webhooks.py) and reads the webhook's signing secret; the secret is stored here,
encrypted with the source's `credential_key_env` key, where `credentials.webhook_secret` finds
it for `cjm serve`. The key is checked *before* any API call, so a bad key never leaves a
webhook behind whose secret cjm could not keep.

Freshdesk: its API reference documents no endpoint for automation rules (notes §3.1: the
"Trigger webhook" action is configured in the admin UI). Third-party code calls
`/api/v2/automations/{type}/rules`, but with disagreeing type ids and no documented field for a
custom header, and a rule that silently lacked the `Authorization` header would be refused by
`cjm serve` for ever. So setup prints the exact rules to create, with the shared secret sent in
the `Authorization` header; the secret comes from the variable `webhook_secret_env` names and is
never printed.

The URL must be https (helpdesks call only public HTTPS endpoints; `cjm serve` sits behind a TLS
proxy), except for localhost, where the simulators and tests run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from journey.config import Settings, SourceConfig
from journey.errors import ConfigError

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class WebhookReport:
    """What `cjm setup-webhook` did for one source, as lines to print (no secret in them)."""

    source: str
    kind: str
    endpoint: str
    lines: tuple[str, ...] = field(default=())


def hook_url(base: str, source: SourceConfig) -> str:
    """The endpoint `cjm serve` answers for `source`: `{public url}/hooks/{kind}/{name}`.

    A URL that already ends in that path is taken as it is (an admin pasting the full URL)."""
    parsed = urlsplit(base.strip())
    host = parsed.hostname or ""
    if parsed.scheme not in ("https", "http") or not host:
        raise ConfigError(
            f"--url {base!r} is not a URL: pass the public https:// address of cjm serve "
            "(or set [serve].public_url)"
        )
    if parsed.scheme == "http" and host not in LOCAL_HOSTS:
        raise ConfigError(
            f"--url {base!r} is not https: helpdesks only call HTTPS endpoints; put cjm serve "
            "behind a TLS proxy and pass its https:// URL (http is allowed for localhost only)"
        )
    if parsed.query or parsed.fragment:
        raise ConfigError(f"--url {base!r} must not carry a query or fragment")
    suffix = f"/hooks/{source.kind}/{source.name}"
    path = parsed.path.rstrip("/")
    if not path.endswith(suffix):
        path += suffix
    return f"{parsed.scheme}://{parsed.netloc}{path}"


def public_url(settings: Settings, url: str | None) -> str:
    chosen = url or settings.serve.public_url
    if not chosen:
        raise ConfigError(
            "no URL for the webhook: pass --url https://cjm.example.com or set "
            "[serve].public_url in cjm.toml"
        )
    return chosen


def check_zendesk_key(settings: Settings, source: SourceConfig) -> tuple[str, str]:
    """The Fernet key (and its variable) that will encrypt the signing secret, validated."""
    if not source.credential_key_env:
        raise ConfigError(
            f"sources.{source.name}.credential_key_env is not set: setup-webhook stores the "
            "webhook signing secret encrypted with that Fernet key; generate one with "
            'python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())", export it and name the variable there'
        )
    from journey.credentials import fernet

    key = settings.credential_key(source)
    fernet(key, source.credential_key_env)
    return key, source.credential_key_env


def freshdesk_rule(settings: Settings, source: SourceConfig, endpoint: str) -> WebhookReport:
    """The automation rule to create by hand in Freshdesk (no API for it), secret not shown."""
    if not source.webhook_secret_env:
        raise ConfigError(
            f"sources.{source.name}.webhook_secret_env is not set: Freshdesk webhooks are "
            "unsigned, so cjm serve needs a shared secret; generate one (e.g. openssl rand -hex "
            "32), export it and name the variable there"
        )
    settings.optional_secret(source, "webhook_secret_env")  # set and non-empty, or a clear error
    env = source.webhook_secret_env
    lines = (
        f"{source.name}: Freshdesk automation rules cannot be created through the API; create "
        "these two in Admin > Workflows > Automations:",
        '  1. "Ticket creation" tab, rule "cjm: customer wrote (new ticket)": condition '
        '"Source is any of Email, Portal, Chat, Feedback widget" (any condition that holds for '
        "customer tickets)",
        '  2. "Ticket updates" tab, rule "cjm: customer wrote (reply)": event "Reply is sent" '
        'performed by "Customer"; no condition',
        "  Action of both: Trigger webhook, Request type POST, Encoding JSON, Content Advanced:",
        f"    URL: {endpoint}",
        f"    Custom header  Authorization: <the value of ${env}>",
        '    Body: {"ticket_id": "{{ticket.id}}"}',
        "  (rules performed by an agent or by cjm's API key never match: no loop)",
    )
    return WebhookReport(source.name, source.kind, endpoint, lines)
