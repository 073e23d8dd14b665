"""Rotated OAuth pairs, encrypted at rest in the `credential` table.

Zendesk rotates the refresh token on every refresh: the old one dies the moment the new pair is
issued. The connector therefore hands every new pair to `TokenVault.save` *before* it uses the
new access token; `save` writes one encrypted row in one transaction (all or nothing), so a crash
at any point leaves either the old pair (still valid: the refresh had not happened) or the new
one on disk, never half of each.

The key is a Fernet key (`cryptography`) read from the environment variable the source's
`credential_key_env` names; tokens never reach the database, a log line or an error unencrypted.
`origin` fingerprints the refresh token from the environment that started the chain: when an
admin re-authorises cjm and puts a new refresh token in the environment, that one wins.

The same key encrypts the Zendesk webhook signing secret `cjm setup-webhook` reads from the API
(one row of kind "webhook_secret" per source beside the "oauth" row): `cjm serve` needs it on
every request and an admin should not have to copy it into the environment by hand.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

from sqlalchemy.engine import Engine
from sqlmodel import select

from connectors.settings import OAuthTokens, ZendeskSettings
from journey.config import Settings, SourceConfig
from journey.db import session_scope
from journey.errors import ConfigError
from journey.models import Credential, utcnow
from journey.secrets import remember

OAUTH = "oauth"
WEBHOOK_SECRET = "webhook_secret"


def fernet(key: str, key_env: str):
    """The Fernet cipher for `key` (read from the variable `key_env`); a bad key is a one-line
    config error naming the fix."""
    try:
        from cryptography.fernet import Fernet
    except ModuleNotFoundError:  # pragma: no cover - the dependency is declared
        raise ConfigError(
            "encrypted credentials need the `cryptography` package: install it"
        ) from None
    try:
        return Fernet(key.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise ConfigError(
            f"{key_env} is not a Fernet key (32 url-safe base64 bytes): generate one "
            'with python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"'
        ) from None


def _row(session, source_name: str, kind: str) -> Credential | None:
    return session.execute(
        select(Credential).where(Credential.source_name == source_name, Credential.kind == kind)
    ).scalar_one_or_none()


def _fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "").encode("utf-8")).hexdigest()[:32]


@dataclass
class TokenVault:
    """Load and save one source's OAuth pair, encrypted with a Fernet key."""

    engine: Engine
    source_name: str
    key: str
    key_env: str
    origin: str = ""

    def _fernet(self):
        return fernet(self.key, self.key_env)

    def load(self) -> OAuthTokens | None:
        """The stored pair, if it continues the chain the environment started."""
        from cryptography.fernet import InvalidToken

        with session_scope(self.engine) as session:
            row = _row(session, self.source_name, OAUTH)
        if row is None or row.origin != self.origin:
            return None
        try:
            data = json.loads(self._fernet().decrypt(row.ciphertext.encode("ascii")))
        except InvalidToken:
            raise ConfigError(
                f"the stored OAuth tokens of {self.source_name} cannot be decrypted with "
                f"{self.key_env}: restore the key that wrote them, or re-authorise cjm"
            ) from None
        return OAuthTokens(data["access_token"], data.get("refresh_token"), data.get("expires_at"))

    def save(self, tokens: OAuthTokens) -> None:
        """Persist a new pair atomically (one row, one transaction), before it is used."""
        blob = json.dumps(
            {
                "access_token": tokens.access_token,
                "refresh_token": tokens.refresh_token,
                "expires_at": tokens.expires_at,
            }
        ).encode("utf-8")
        ciphertext = self._fernet().encrypt(blob).decode("ascii")
        with session_scope(self.engine) as session:
            row = _row(session, self.source_name, OAUTH)
            if row is None:
                row = Credential(
                    source_name=self.source_name,
                    kind=OAUTH,
                    origin=self.origin,
                    ciphertext=ciphertext,
                )
            row.origin, row.ciphertext, row.updated_at = self.origin, ciphertext, utcnow()
            session.add(row)


def with_token_vault(
    engine: Engine, settings: ZendeskSettings, *, key: str, key_env: str
) -> ZendeskSettings:
    """Settings whose OAuth pair is the newest one stored (if the chain continues) and whose
    rotations are persisted, encrypted, before use."""
    vault = TokenVault(
        engine, settings.name, key, key_env, origin=_fingerprint(settings.oauth_refresh_token)
    )
    vault._fernet()  # fail on a bad key now, not in the middle of a sync
    stored = vault.load()
    if stored is not None:
        settings = replace(
            settings,
            oauth_token=stored.access_token,
            oauth_refresh_token=stored.refresh_token,
            oauth_expires_at=stored.expires_at,
        )
    return replace(settings, token_store=vault.save)


def store_webhook_secret(
    engine: Engine, source_name: str, secret: str, *, key: str, key_env: str
) -> None:
    """Save (or replace) a source's webhook signing secret, encrypted, in one transaction."""
    remember(secret)  # masked in any log line from now on
    ciphertext = fernet(key, key_env).encrypt(secret.encode("utf-8")).decode("ascii")
    with session_scope(engine) as session:
        row = _row(session, source_name, WEBHOOK_SECRET)
        if row is None:
            row = Credential(
                source_name=source_name, kind=WEBHOOK_SECRET, origin="", ciphertext=ciphertext
            )
        row.ciphertext, row.updated_at = ciphertext, utcnow()
        session.add(row)


def stored_webhook_secret(
    engine: Engine, source_name: str, *, key: str, key_env: str
) -> str | None:
    """The signing secret `cjm setup-webhook` stored for the source, or None."""
    from cryptography.fernet import InvalidToken

    with session_scope(engine) as session:
        row = _row(session, source_name, WEBHOOK_SECRET)
    if row is None:
        return None
    try:
        secret = fernet(key, key_env).decrypt(row.ciphertext.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ConfigError(
            f"the stored webhook secret of {source_name} cannot be decrypted with {key_env}: "
            "restore the key that wrote it, or run cjm setup-webhook again"
        ) from None
    remember(secret)
    return secret


def webhook_secret(settings: Settings, engine: Engine, source: SourceConfig) -> str | None:
    """The secret that authenticates `source`'s webhooks, or None when none is configured.

    The variable `webhook_secret_env` names wins; otherwise the signing secret `cjm
    setup-webhook` stored encrypted (Zendesk), decrypted with the `credential_key_env` key.
    None means `cjm serve` refuses the source's webhooks (401): an unauthenticated doorbell
    would let anyone make cjm spend API calls.
    """
    from_env = settings.optional_secret(source, "webhook_secret_env")
    if from_env is not None or not source.credential_key_env:
        return from_env
    return stored_webhook_secret(
        engine,
        source.name,
        key=settings.credential_key(source),
        key_env=source.credential_key_env,
    )
