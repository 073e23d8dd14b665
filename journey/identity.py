"""Hashed e-mail addresses: how one customer's conversations in two helpdesks become one journey
without cjm ever storing the address.

`email_hash` is HMAC-SHA256 over the trimmed, lower-cased address. The key is the environment's
CJM_EMAIL_HASH_KEY when set (keep it in your secret store; the same key on every machine that
syncs into this database), else a random key made once per database (`identity_salt`), so the
hashes cannot be matched against another database's or a list of known addresses' hashes
without that database. Changing the key changes every hash: the next sync rewrites them.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping

from sqlmodel import Session, col, select

from journey.models import IdentitySalt

KEY_ENV = "CJM_EMAIL_HASH_KEY"


def email_hash(email: str, key: bytes) -> str:
    """Hex HMAC-SHA256 of the normalised address (case and surrounding spaces ignored)."""
    return hmac.new(key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()


def hash_key(session: Session, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key: CJM_EMAIL_HASH_KEY, else this database's own random salt (made on first use,
    in the caller's transaction)."""
    env = os.environ if environ is None else environ
    configured = env.get(KEY_ENV)
    if configured:
        return configured.encode("utf-8")
    salt = (
        session.execute(select(IdentitySalt.salt).order_by(col(IdentitySalt.id))).scalars().first()
    )
    if salt is None:
        salt = secrets.token_hex(32)
        session.add(IdentitySalt(salt=salt))
        session.flush()
    return salt.encode("utf-8")


def hashed_emails(session: Session, people: Iterable[tuple[str, str | None]]) -> dict[str, str]:
    """external id → e-mail hash for the people that came with an address (others left out)."""
    with_email = [(ext, email) for ext, email in people if email and "@" in email]
    if not with_email:
        return {}
    key = hash_key(session)
    return {ext: email_hash(email, key) for ext, email in with_email}
