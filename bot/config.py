"""Configuration: one TOML file validated by pydantic, secrets overridable from the environment.

Any key can be set from the environment as ``SALESBOT__SECTION__KEY`` (double underscores separate the path), e.g.
``SALESBOT__WECOM__SECRET`` or ``SALESBOT__DATABASE__URL``; the environment wins over the file.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.services.visit_parser import VISIT_FIELDS

ENV_PREFIX = "SALESBOT__"
CONFIG_ENV = "SALESBOT_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Bodies larger than this are refused before parsing (bytes).
    max_body_bytes: int = Field(64 * 1024, ge=1024)


class DatabaseConfig(_Section):
    url: str = "sqlite+aiosqlite:///salesbot.db"
    echo: bool = False
    pool_size: int = Field(5, ge=1)

    @field_validator("url")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        if not (v.startswith("sqlite+aiosqlite://") or v.startswith("postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return v


class OrgConfig(_Section):
    name: str = "演示公司"
    timezone: str = "Asia/Shanghai"
    default_locale: Literal["zh-CN", "en"] = "zh-CN"
    # Demo mode: the console lets anyone pick who they are. Never enable it on a real deployment.
    demo: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class DepartmentConfig(_Section):
    name_zh: str
    name_en: str


def _default_departments() -> dict[str, DepartmentConfig]:
    return {
        "logistics": DepartmentConfig(name_zh="物流", name_en="Logistics"),
        "marketing": DepartmentConfig(name_zh="市场", name_en="Marketing"),
        "compliance": DepartmentConfig(name_zh="合规", name_en="Compliance"),
    }


def _default_objections() -> dict[str, list[str]]:
    return {
        "价格": ["price", "价钱", "费用", "贵"],
        "交付": ["delivery", "货期", "供货"],
        "资质": ["qualification", "证照", "授权"],
        "其他": ["other", "其它"],
    }


class VisitsConfig(_Section):
    # Fields the guided dialog insists on before the confirmation card.
    required_fields: list[str] = Field(default_factory=lambda: ["customer", "ward", "contacts", "objection"])
    # Canonical objection → accepted aliases (zh/en). The canonical value is what is stored.
    objections: dict[str, list[str]] = Field(default_factory=_default_objections)
    # A location shared this many minutes before or after the visit time attaches to the visit.
    location_window_minutes: int = Field(120, ge=1, le=24 * 60)
    # flag: save and mark "无定位"; reject: the visit cannot be submitted without a location in the window.
    no_location_policy: Literal["flag", "reject"] = "flag"
    backdate_days: int = Field(3, ge=0, le=60)
    # A submitted visit is locked; its rep may still correct it for this many hours.
    correction_window_hours: int = Field(24, ge=0, le=24 * 30)
    # A location farther than this from the customer is accepted but questioned (metres).
    far_warning_meters: int = Field(3000, ge=100)
    # Minutes a visit time may lie in the future (clock skew between phone and server).
    future_tolerance_minutes: int = Field(10, ge=0, le=120)

    @field_validator("required_fields")
    @classmethod
    def _known_fields(cls, v: list[str]) -> list[str]:
        unknown = [f for f in v if f not in VISIT_FIELDS]
        if unknown:
            raise ValueError(f"unknown field(s) {unknown}; allowed: {', '.join(VISIT_FIELDS)}")
        if "customer" not in v:
            raise ValueError("'customer' must be required")
        return v

    @field_validator("objections")
    @classmethod
    def _objections_nonempty(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        if not v:
            raise ValueError("at least one objection is required")
        return v


class ConversationConfig(_Section):
    # An unfinished dialog is forgotten after this many minutes of silence.
    expiry_minutes: int = Field(30, ge=1, le=7 * 24 * 60)


class OutboxConfig(_Section):
    poll_interval_seconds: float = Field(1.0, gt=0, le=60)
    batch_size: int = Field(50, ge=1, le=1000)
    # Give up after this many attempts or this long after the message was written, whichever comes first; the row
    # stays visible as 'dead' in the outbox, the audit log and the metrics.
    max_attempts: int = Field(20, ge=1, le=1000)
    give_up_after_seconds: float = Field(6 * 3600, gt=0)
    backoff_base_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    # Deliveries in flight at once (each to a different recipient).
    concurrency: int = Field(8, ge=1, le=64)
    # A row claimed by a worker that died is reclaimed after this lease.
    lease_seconds: float = Field(60.0, gt=0)


class ConsoleConfig(_Section):
    # None = on in demo mode, off otherwise.
    enabled: bool | None = None
    # HMAC key for console sign-in tokens (`salesbot console token USER`). Prefer SALESBOT__CONSOLE__TOKEN_SECRET.
    token_secret: SecretStr | None = None
    # Long-poll wait for new messages in the browser (seconds).
    poll_timeout_seconds: float = Field(25.0, gt=0, le=120)


class WeComConfig(_Section):
    enabled: bool = False
    corp_id: str = ""
    agent_id: int = 0
    secret: SecretStr = SecretStr("")
    token: SecretStr = SecretStr("")
    encoding_aes_key: SecretStr = SecretStr("")
    api_base_url: str = "https://qyapi.weixin.qq.com/cgi-bin/"
    replay_window_seconds: int = Field(300, ge=0)
    # WeCom silently drops beyond 30 messages/min and 1000/h per person per app: stay below that.
    per_user_per_minute: int = Field(20, ge=1, le=30)
    per_user_per_hour: int = Field(600, ge=1, le=1000)
    # All API calls of this app (WeCom allows 10,000/min per endpoint per corp).
    app_calls_per_minute: int = Field(3000, ge=1, le=10000)
    request_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # WeCom's enable_duplicate_check window: a message resent after a crash is shown once.
    duplicate_check_seconds: int = Field(1800, ge=0, le=4 * 3600)

    @field_validator("api_base_url")
    @classmethod
    def _trailing_slash(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v if v.endswith("/") else v + "/"

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> WeComConfig:
        if self.enabled:
            missing = [
                k
                for k, v in (
                    ("corp_id", self.corp_id),
                    ("agent_id", self.agent_id),
                    ("secret", self.secret.get_secret_value()),
                    ("token", self.token.get_secret_value()),
                    ("encoding_aes_key", self.encoding_aes_key.get_secret_value()),
                )
                if not v
            ]
            if missing:
                raise ValueError(f"enabled but missing: {', '.join(missing)}")
            if len(self.encoding_aes_key.get_secret_value()) != 43:
                raise ValueError("encoding_aes_key must be 43 characters")
        return self


class DingTalkConfig(_Section):
    enabled: bool = False
    app_key: str = ""
    app_secret: SecretStr = SecretStr("")
    robot_code: str = ""
    api_base_url: str = "https://api.dingtalk.com"


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = False


class Settings(_Section):
    """The whole validated configuration."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    org: OrgConfig = Field(default_factory=OrgConfig)
    departments: dict[str, DepartmentConfig] = Field(default_factory=_default_departments)
    visits: VisitsConfig = Field(default_factory=VisitsConfig)
    conversation: ConversationConfig = Field(default_factory=ConversationConfig)
    outbox: OutboxConfig = Field(default_factory=OutboxConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    wecom: WeComConfig = Field(default_factory=WeComConfig)
    dingtalk: DingTalkConfig = Field(default_factory=DingTalkConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @property
    def console_enabled(self) -> bool:
        return self.org.demo if self.console.enabled is None else self.console.enabled

    @model_validator(mode="after")
    def _console_signin_possible(self) -> Settings:
        if self.console_enabled and not self.org.demo and self.console.token_secret is None:
            raise ValueError("console.token_secret is required when the console is enabled outside demo mode")
        return self


@dataclass(frozen=True)
class ConfigIssue:
    """One validation problem, located by its TOML path."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(Exception):
    """The configuration could not be loaded; ``issues`` lists every problem found."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__(f"{source}: {len(issues)} configuration error(s)")


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = value


def _issues_from(exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against config.example.toml)"
        issues.append(ConfigIssue(path, msg))
    return issues


def parse_settings(data: dict[str, Any], source: str = "<config>") -> Settings:
    """Validate a raw mapping; raise ConfigError listing every problem."""
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _issues_from(exc)) from None


def load_settings(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Load the TOML file (or only defaults + environment when ``path`` is None) and validate it."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(source, [ConfigIssue("", f"file not found: {path}")]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(source, [ConfigIssue("", f"TOML syntax error: {exc}")]) from None
    _apply_env(data, env)
    return parse_settings(data, source)


def resolve_config_path(path: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The --config option, else SALESBOT_CONFIG, else None (defaults)."""
    env = os.environ if environ is None else environ
    return path or env.get(CONFIG_ENV) or None
