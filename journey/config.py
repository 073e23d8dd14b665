"""`cjm.toml` → typed settings, validated once; secrets come only from named environment variables.

Every mistake becomes a ConfigError with one line that names the key and the fix, because the
person reading it is usually looking at a cron mail, not a debugger.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connectors.settings import (
    FRESHDESK_LIST_LIMIT,
    ZENDESK_CHAT_BASE_URL,
    ZENDESK_TOKEN_ENV,
    FreshchatSettings,
    FreshdeskSettings,
    RateLimitSettings,
    ZendeskSettings,
)
from journey.errors import ConfigError
from journey.secrets import remember

DEFAULT_CONFIG = "cjm.toml"
DEFAULT_DATABASE_URL = "sqlite:///cjm.db"
SECRET_KEYS = {
    "token",
    "api_key",
    "oauth_token",
    "password",
    "secret",
    "refresh_token",
    "webhook_secret",
    "app_secret",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Strict):
    url: str = DEFAULT_DATABASE_URL


_LIMITS = RateLimitSettings()  # the connectors' defaults: defined once, in connectors/settings.py


class LimitsConfig(_Strict):
    requests_per_minute: Annotated[int, Field(gt=0)] = _LIMITS.requests_per_minute
    export_requests_per_minute: Annotated[int, Field(gt=0)] = _LIMITS.export_requests_per_minute
    budget_share: Annotated[float, Field(gt=0, le=1)] = _LIMITS.budget_share
    max_retries: Annotated[int, Field(ge=0, le=20)] = _LIMITS.max_retries
    timeout_seconds: Annotated[float, Field(gt=0)] = _LIMITS.timeout_seconds
    # A server that fails or hangs ends the run after this many seconds (from its first failure).
    give_up_after_seconds: Annotated[float, Field(gt=0)] = _LIMITS.give_up_after_seconds
    # Freshdesk: the plan's (lower) tickets-list limit per minute; omitted → learnt from the
    # plan the account announces, starting from Growth's (FRESHDESK_LIST_LIMIT).
    ticket_list_per_minute: Annotated[int, Field(gt=0)] | None = None


class SourceConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    kind: Literal["zendesk", "freshdesk"]
    subdomain: str | None = None
    domain: str | None = None
    base_url: str | None = None
    email: str | None = None
    token_env: str | None = None
    oauth_token_env: str | None = None
    api_key_env: str | None = None
    # Freshdesk: Freshchat transcripts as a stream of the same source (bearer key, own host).
    freshchat_base_url: str | None = None
    freshchat_token_env: str | None = None
    writeback: bool = True
    # Where the first pull starts (a date, UTC midnight) while no cursor is stored for the
    # source; default: everything the API returns. `cjm sync --since` overrides it.
    start_date: date | None = None
    limits: LimitsConfig = LimitsConfig()
    # --- Zendesk, production-grade connector (all optional) --------------------------------
    # OAuth refresh-token rotation: the refresh token and the OAuth client come from the
    # environment; rotated pairs are stored encrypted with the Fernet key credential_key_env
    # names (required with a refresh token: a rotation that is not persisted locks cjm out).
    oauth_refresh_token_env: str | None = None
    oauth_client_id_env: str | None = None
    oauth_client_secret_env: str | None = None
    credential_key_env: str | None = None
    satisfaction_ratings: bool = True  # CSAT comments as solicited feedback
    messaging_transcripts: bool = True  # conversation_log of messaging tickets
    chat_export: bool = False  # legacy Zendesk Chat through the Chat API incremental export
    chat_base_url: str | None = None  # default ZENDESK_CHAT_BASE_URL (www.zopim.com)
    chat_oauth_token_env: str | None = None  # default: the Support OAuth token
    # --- Real time (`cjm serve`) and the agent apps (all optional) -------------------------
    # Zendesk: the webhook signing secret (normally stored encrypted by `cjm setup-webhook`;
    # this variable overrides it). Freshdesk: the shared secret the automation rule sends in
    # the Authorization header (Freshdesk webhooks are unsigned).
    webhook_secret_env: str | None = None
    # Zendesk app: the shared secret of the app's secure setting (JWT HS256 per request);
    # Freshdesk app: the bearer token its secure iparam holds.
    app_secret_env: str | None = None

    @model_validator(mode="after")
    def _where(self) -> SourceConfig:
        if self.kind == "zendesk" and not (self.subdomain or self.base_url):
            raise ValueError("needs subdomain or base_url")
        if self.oauth_refresh_token_env and not (
            self.oauth_token_env
            and self.oauth_client_id_env
            and self.oauth_client_secret_env
            and self.credential_key_env
        ):
            raise ValueError(
                "oauth_refresh_token_env needs oauth_token_env, oauth_client_id_env, "
                "oauth_client_secret_env and credential_key_env"
            )
        if self.chat_export and not (self.chat_oauth_token_env or self.oauth_token_env):
            raise ValueError("chat_export needs chat_oauth_token_env (the Chat API is OAuth only)")
        if self.kind == "freshdesk" and not (self.domain or self.base_url):
            raise ValueError("needs domain or base_url")
        return self

    def resolved_base_url(self) -> str:
        if self.base_url:
            return self.base_url.rstrip("/")
        if self.kind == "zendesk":
            return f"https://{self.subdomain}.zendesk.com"
        return f"https://{self.domain}.freshdesk.com"


class MinerConfig(_Strict):
    taxonomy: str | None = None
    model: str | None = None
    redact_pii: bool = True
    abstain_below: Annotated[float, Field(ge=0, le=1)] | None = None
    # Sentence embeddings beside TF-IDF (journey/embeddings.py): "minilm" needs the quality
    # extra; a trained model keeps the embeddings it was trained with.
    embeddings: Literal["wordllama", "minilm", "none"] = "wordllama"
    # Processes that mine: 0 (auto) uses both cores once 10,000 or more conversations wait
    # (a model change re-labelling history, a first sync); N ≥ 1 always uses N.
    processes: Annotated[int, Field(ge=0, le=16)] = 0


class MapConfig(_Strict):
    out_dir: str = "cjm-map"


class ServeConfig(_Strict):
    """`cjm serve`: where it listens and who may call the app API from a browser."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(gt=0, lt=65536)] = 8787
    workers: Annotated[int, Field(ge=0, le=32)] = 1
    # Origins allowed by CORS on /api/v1 (the helpdesk domains, e.g. https://acme.zendesk.com).
    allowed_origins: list[str] = []
    # The URL the helpdesk reaches cjm at (behind the TLS proxy); used by setup-webhook.
    public_url: str | None = None
    # The live map (/map) and the labelling page (/label) show customer text: with this
    # variable set they need its token (header or the cookie /label?token=… sets); without it
    # they answer only clients on this machine (127.0.0.1 / ::1).
    pages_token_env: str | None = None


class FileConfig(_Strict):
    database: DatabaseConfig = DatabaseConfig()
    sources: list[SourceConfig] = []
    miner: MinerConfig = MinerConfig()
    map: MapConfig = MapConfig()
    serve: ServeConfig = ServeConfig()


class Settings(BaseModel):
    """Everything a command needs, with paths resolved against the config file's folder."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    config_path: Path | None
    database_url: str
    sources: tuple[SourceConfig, ...]
    miner: MinerConfig
    map: MapConfig
    serve: ServeConfig = ServeConfig()
    environ: Mapping[str, str] = Field(default_factory=dict, repr=False)

    def source(self, name: str | None) -> list[SourceConfig]:
        if name is None:
            return list(self.sources)
        for source in self.sources:
            if source.name == name:
                return [source]
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} in the config (known: {known})")

    def resolve_path(self, value: str | None) -> Path | None:
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.config_path is not None:
            path = self.config_path.parent / path
        return path

    def zendesk_settings(self, source: SourceConfig) -> ZendeskSettings:
        """Connection settings with the secret read from the variable the config names."""
        oauth = self._secret(source, "oauth_token_env") if source.oauth_token_env else None
        token = None
        if oauth is None:
            if not source.token_env:
                raise ConfigError(
                    f"sources.{source.name}: set token_env (API token) or oauth_token_env"
                )
            if not source.email:
                raise ConfigError(
                    f"sources.{source.name}.email is required with token_env (API-token auth)"
                )
            token = self._secret(source, "token_env")
        limits = source.limits
        refresh = client_id = client_secret = None
        if source.oauth_refresh_token_env:  # rotation (validated together in SourceConfig)
            refresh = self._secret(source, "oauth_refresh_token_env")
            client_id = self._secret(source, "oauth_client_id_env")
            client_secret = self._secret(source, "oauth_client_secret_env")
        chat_token = (
            self._secret(source, "chat_oauth_token_env") if source.chat_oauth_token_env else None
        )
        return ZendeskSettings(
            name=source.name,
            base_url=source.resolved_base_url(),
            email=source.email,
            api_token=token,
            oauth_token=oauth,
            credential_env=source.oauth_token_env or source.token_env or ZENDESK_TOKEN_ENV,
            limits=RateLimitSettings(
                requests_per_minute=limits.requests_per_minute,
                export_requests_per_minute=limits.export_requests_per_minute,
                budget_share=limits.budget_share,
                max_retries=limits.max_retries,
                timeout_seconds=limits.timeout_seconds,
                give_up_after_seconds=limits.give_up_after_seconds,
            ),
            oauth_refresh_token=refresh,
            oauth_client_id=client_id,
            oauth_client_secret=client_secret,
            satisfaction_ratings=source.satisfaction_ratings,
            messaging_transcripts=source.messaging_transcripts,
            chat_export=source.chat_export,
            chat_base_url=(source.chat_base_url or ZENDESK_CHAT_BASE_URL).rstrip("/"),
            chat_oauth_token=chat_token,
        )

    def credential_key(self, source: SourceConfig) -> str:
        """The Fernet key that encrypts the source's rotated OAuth pair."""
        return self._secret(source, "credential_key_env")

    def freshdesk_settings(self, source: SourceConfig) -> FreshdeskSettings:
        """Freshdesk connection settings (+ Freshchat when configured); secrets from the env."""
        if not source.api_key_env:
            raise ConfigError(
                f"sources.{source.name}: set api_key_env (the variable holding the API key)"
            )
        freshchat = None
        if source.freshchat_base_url or source.freshchat_token_env:
            if not (source.freshchat_base_url and source.freshchat_token_env):
                raise ConfigError(
                    f"sources.{source.name}: Freshchat needs both freshchat_base_url and "
                    "freshchat_token_env"
                )
            freshchat = FreshchatSettings(
                base_url=source.freshchat_base_url.rstrip("/"),
                token=self._secret(source, "freshchat_token_env"),
                credential_env=source.freshchat_token_env,
                budget_share=source.limits.budget_share,
            )
        limits = source.limits
        return FreshdeskSettings(
            name=source.name,
            base_url=source.resolved_base_url(),
            api_key=self._secret(source, "api_key_env"),
            credential_env=source.api_key_env,
            limits=RateLimitSettings(
                requests_per_minute=limits.requests_per_minute,
                export_requests_per_minute=limits.ticket_list_per_minute or FRESHDESK_LIST_LIMIT,
                budget_share=limits.budget_share,
                max_retries=limits.max_retries,
                timeout_seconds=limits.timeout_seconds,
                give_up_after_seconds=limits.give_up_after_seconds,
            ),
            learn_list_limit=limits.ticket_list_per_minute is None,
            freshchat=freshchat,
        )

    def optional_secret(self, source: SourceConfig, key: str) -> str | None:
        """The secret the variable `key` names, or None when the config names no variable."""
        return self._secret(source, key) if getattr(source, key) else None

    def _secret(self, source: SourceConfig, key: str) -> str:
        variable = getattr(source, key)
        value = self.environ.get(variable, "")
        remember(value)
        if not value:
            raise ConfigError(
                f"environment variable {variable} is not set "
                f"(sources.{source.name}.{key}): export it before running cjm"
            )
        return value


def load_settings(
    path: str | Path | None, environ: Mapping[str, str], *, required: bool = True
) -> Settings:
    """Read, validate and resolve the config; only cli.py reads os.environ, and passes it in."""
    chosen = path or environ.get("CJM_CONFIG") or None
    config_path = Path(chosen) if chosen else Path(DEFAULT_CONFIG)
    if not config_path.exists():
        if chosen or required:
            raise ConfigError(
                f"config file {config_path} not found: create it (see README, 'Configuration') "
                "or pass --config / set CJM_CONFIG"
            )
        raw: dict[str, Any] = {}
        config_file: Path | None = None
    else:
        config_file = config_path.resolve()
        try:
            raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {config_path}: {exc.strerror}") from None
    _refuse_literal_secrets(raw, config_path)
    try:
        parsed = FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, config_path, raw)) from None
    names = [s.name for s in parsed.sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{config_path}: source name {duplicates[0]!r} is used twice")
    database_url = environ.get("CJM_DATABASE_URL") or parsed.database.url
    settings = Settings(
        config_path=config_file,
        database_url=database_url,
        sources=tuple(parsed.sources),
        miner=parsed.miner,
        map=parsed.map,
        serve=parsed.serve,
        environ=dict(environ),
    )
    if database_url.startswith("sqlite:///") and config_file is not None:
        relative = database_url.removeprefix("sqlite:///")
        if relative and not relative.startswith("/") and relative != ":memory:":
            settings = settings.model_copy(
                update={"database_url": f"sqlite:///{config_file.parent / relative}"}
            )
    return settings


def _refuse_literal_secrets(raw: Mapping[str, Any], path: Path) -> None:
    for index, source in enumerate(raw.get("sources") or ()):
        if not isinstance(source, Mapping):
            continue
        for key in source:
            if key in SECRET_KEYS:
                raise ConfigError(
                    f"{path}: sources[{index}].{key} holds a secret in the file; remove it and "
                    f'name an environment variable instead ({key}_env = "CJM_...")'
                )


def _one_line(exc: ValidationError, path: Path, raw: Mapping[str, Any]) -> str:
    error = exc.errors()[0]
    location = list(error["loc"])
    if location and location[0] == "sources" and len(location) > 1:
        index = location[1]
        try:
            name = raw["sources"][index].get("name") or index
        except (KeyError, IndexError, TypeError, AttributeError):
            name = index
        location = ["sources", str(name), *location[2:]]
    key = ".".join(str(p) for p in location if not str(p).startswith(("function-", "literal")))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key {key!r}; remove it or check its spelling (see README)"
    if kind == "missing":
        return f"{path}: missing key {key!r}; add it (see README, 'Configuration')"
    if kind == "literal_error":
        return f"{path}: {key} = {error.get('input')!r} is not supported; {error['msg'].lower()}"
    return f"{path}: {key}: {error['msg']}"
