"""Who may call `/api/v1`: the helpdesk apps, proven by the source's app secret.

Zendesk: the sidebar calls through Zendesk's proxy (`client.request({secure: true, cors:
false, jwt: …})`), which signs a short JWT per request with the app's *secure* shared-secret
setting (HS256) — the browser never sees the secret. The claims come from the app's own
JavaScript, so the token proves "an installed copy of our app holding the secret", not which
agent clicked; we therefore pin the algorithm (never read it from the token), require `exp` and
`iat`, refuse tokens living longer than `MAX_LIFETIME`, and require `iss` = ``ZENDESK_ISSUER``
and `aud` = ``cjm:<source>`` so a token minted for one cjm source is useless for another.

Freshdesk: the app's secure iparam holds a bearer token that its request template
(`config/requests.json`) sends; compared in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

import jwt

from journey.config import Settings, SourceConfig
from journey.errors import ConfigError

ZENDESK_ISSUER = "cjm-zendesk-app"
MAX_LIFETIME = 600  # seconds between iat and exp; the app asks for 60
LEEWAY = 30  # clock skew between Zendesk's proxy and cjm


class AuthError(Exception):
    """401: the message says what is missing or wrong (never the secret)."""


@dataclass(frozen=True)
class Caller:
    """The authenticated app and whom it names as the agent (from the token or the body)."""

    app: str  # "zendesk app" | "freshdesk app"
    agent: str | None


def audience(source: str) -> str:
    return f"cjm:{source}"


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("missing Authorization: Bearer <token> header")
    return token.strip()


def _secret(settings: Settings, source: SourceConfig) -> str:
    try:
        secret = settings.optional_secret(source, "app_secret_env")
    except ConfigError as exc:
        raise AuthError(f"cjm cannot check app requests for {source.name!r}: {exc}") from None
    if not secret:
        raise AuthError(
            f"source {source.name!r} has no app secret: set app_secret_env in its [[sources]] "
            "entry and export that variable"
        )
    return secret


def authenticate(
    settings: Settings, source: SourceConfig, authorization: str | None, ticket_id: str | None
) -> Caller:
    """The caller of a `/api/v1/…/<source>/…` request (`ticket_id`: the ticket it is about, or
    None for the map), or AuthError."""
    token = _bearer(authorization)
    secret = _secret(settings, source)
    if source.kind == "freshdesk":
        if not hmac.compare_digest(token.encode("utf-8"), secret.encode("utf-8")):
            raise AuthError("wrong bearer token for this source")
        return Caller(app="freshdesk app", agent=None)
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=audience(source.name),
            issuer=ZENDESK_ISSUER,
            leeway=LEEWAY,
            options={"require": ["exp", "iat", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("the app's token has expired") from None
    except jwt.InvalidAudienceError:
        raise AuthError(f"the app's token is not for source {source.name!r}") from None
    except jwt.InvalidIssuerError:
        raise AuthError(f"the app's token must have iss={ZENDESK_ISSUER!r}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthError(f"the app's token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"invalid app token ({type(exc).__name__})") from None
    if int(claims["exp"]) - int(claims["iat"]) > MAX_LIFETIME:
        raise AuthError(f"the app's token lives longer than {MAX_LIFETIME} s")
    if ticket_id is not None and "ticket_id" in claims and str(claims["ticket_id"]) != ticket_id:
        raise AuthError("the app's token was minted for another ticket")
    agent = claims.get("email") or claims.get("name") or claims.get("sub")
    return Caller(app="zendesk app", agent=str(agent)[:200] if agent else None)
