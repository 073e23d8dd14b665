"""Typed connection settings, built once by `cli.py` from the config file and the environment.

Connectors never read the environment themselves. Secret values are held out of `repr()` so a
stray log line or traceback cannot print them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True)
class ZendeskSettings:
    name: str
    base_url: str
    email: str | None = None
    api_token: str | None = field(default=None, repr=False)
    oauth_token: str | None = field(default=None, repr=False)
    credential_env: str = "CJM_ZENDESK_TOKEN"
    limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    tickets_per_page: int = 1000
    events_per_page: int = 1000
    include_users: bool = True
    closed_status: str = "closed"
    verify_tls: bool = True
