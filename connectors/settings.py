"""Typed connection settings, built once by `cli.py` from the config file and the environment.

Connectors never read the environment themselves. Secret values are held out of `repr()` so a
stray log line or traceback cannot print them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

# Defaults that more than one module needs live here once (journey/config.py builds its
# `[sources.limits]` defaults from `RateLimitSettings()`; the simulators keep their own copy of
# the vendors' numbers, since they import nothing of ours).
ZENDESK_TOKEN_ENV = "CJM_ZENDESK_TOKEN"
ZENDESK_CHAT_BASE_URL = "https://www.zopim.com"  # the legacy Chat API's host (dlt uses it too)
FRESHDESK_PLAN_LIMIT = 200  # calls/min per account on the Growth plan
FRESHDESK_LIST_LIMIT = 20  # Growth's tickets-list limit: the safe guess for an unknown plan
FRESHDESK_PER_PAGE = 100  # Freshdesk's largest `per_page`, the same on every list endpoint


@dataclass(frozen=True)
class RateLimitSettings:
    """How much of the account's API budget cjm may use (agents' apps share it)."""

    requests_per_minute: int = 200
    export_requests_per_minute: int = 10
    budget_share: float = 0.5
    max_retries: int = 6
    max_backoff_seconds: float = 60.0
    default_retry_after: float = 60.0
    timeout_seconds: float = 120.0
    # A server that keeps failing or never answers ends the run after this long (counted from
    # its first failure; rate-limit waits excluded), with a one-line error.
    give_up_after_seconds: float = 300.0


@dataclass(frozen=True)
class OAuthTokens:
    """An OAuth access/refresh pair. Zendesk rotates both on every refresh: the old refresh
    token dies, so the new pair must be persisted before the new access token is used."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # Unix seconds; None when the server did not say


TokenStore = Callable[[OAuthTokens], None]
"""Persists a rotated pair durably (and atomically) before it is used; raising aborts the sync
with the old pair still valid on the server side only until its access token expires."""


@dataclass(frozen=True)
class ZendeskSettings:
    name: str
    base_url: str
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)
    credential_env: str = ZENDESK_TOKEN_ENV
    limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    tickets_per_page: int = 1000
    events_per_page: int = 1000
    include_users: bool = True
    verify_tls: bool = True
    # --- OAuth refresh-token rotation (all optional; without a refresh token a 401 is final)
    oauth_refresh_token: str | None = field(default=None, repr=False)
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = field(default=None, repr=False)
    oauth_expires_at: float | None = None
    token_store: TokenStore | None = field(default=None, repr=False, compare=False)
    # --- optional streams and pull behaviour
    min_events_per_page: int = 50  # 504 halves the events page size down to this floor
    satisfaction_ratings: bool = True  # CSAT comments, stored as solicited feedback
    messaging_transcripts: bool = True  # conversation_log for from_messaging_channel tickets
    repull_redacted: bool = True  # re-read a ticket's comments after a redaction event
    chat_export: bool = False  # legacy Zendesk Chat: Chat API incremental export
    chat_base_url: str = ZENDESK_CHAT_BASE_URL
    chat_oauth_token: str | None = field(default=None, repr=False)  # default: oauth_token
    chat_requests_per_minute: int = 200
    # --- write-back
    max_jobs_in_flight: int = 10  # of the account's 30; agents' apps need the rest
    retry_failed_updates: int = 1  # per-ticket failures inside a job are retried this often


# ---- Freshdesk + Freshchat (additive) -----------------------------------------------------------


@dataclass(frozen=True)
class FreshchatSettings:
    """Freshchat chat transcripts, an option of a Freshdesk source (own host, bearer key)."""

    base_url: str
    token: str | None = field(default=None, repr=False)
    credential_env: str = "CJM_FRESHCHAT_TOKEN"
    requests_per_minute: int = 100
    budget_share: float = RateLimitSettings.budget_share
    report_window_hours: int = 24  # one raw-report extract covers at most this much time
    lookback_days: int = 90  # the first run reads this far back (reports keep ~15 months)
    messages_per_page: int = 50
    report_poll_seconds: float = 5.0


def _freshdesk_limits() -> RateLimitSettings:
    # Growth plan: 200 calls/min per account, 20/min on the tickets list.
    return RateLimitSettings(
        requests_per_minute=FRESHDESK_PLAN_LIMIT, export_requests_per_minute=FRESHDESK_LIST_LIMIT
    )


@dataclass(frozen=True)
class FreshdeskSettings:
    """One Freshdesk account. `limits.requests_per_minute` is the plan's account limit and
    `limits.export_requests_per_minute` its (lower) tickets-list limit; cjm uses at most
    `limits.budget_share` of either, counting credits (each `include` costs 2 extra)."""

    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    credential_env: str = "CJM_FRESHDESK_KEY"
    limits: RateLimitSettings = field(default_factory=_freshdesk_limits)
    tickets_per_page: int = FRESHDESK_PER_PAGE
    conversations_per_page: int = FRESHDESK_PER_PAGE
    agents_per_page: int = FRESHDESK_PER_PAGE
    max_page: int = 300  # Freshdesk answers 400 beyond page 300
    restart_every_pages: int = 1  # restart `updated_since` from the last record every N pages
    include_stats: bool = True  # stats tell a reply from cjm's own tag write (2 credits/call)
    # the requester's e-mail, which journey hashes to merge a customer's journeys across
    # sources (2 credits per list call of 100 tickets)
    include_requester: bool = True
    include_credits: int = 2
    concurrency: int = 8  # conversations / updates in flight at once
    tags_max_age_seconds: float = 900.0  # pulled tags younger than this spare a GET before PUT
    tag_cache_size: int = 200_000
    low_remaining_pause_seconds: float = 5.0
    # The tickets-list limit was not configured: learn it from the plan the account announces
    # (`X-RateLimit-Total`), instead of assuming Growth's 20/min on a Pro or Enterprise account.
    learn_list_limit: bool = False
    freshchat: FreshchatSettings | None = None
    verify_tls: bool = True
