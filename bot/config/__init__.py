"""Configuration: one TOML file validated by pydantic, secrets overridable from the environment.

Any key can be set from the environment as ``SALESBOT__SECTION__KEY`` (double underscores separate the path), e.g.
``SALESBOT__WECOM__SECRET`` or ``SALESBOT__DATABASE__URL``; the environment wins over the file.
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Collection, Mapping
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

from bot.calendar.workcal import WorkCalendarConfig
from bot.config.request_types import check_request_types

# The fields of a visit record, in the order cards show them ([visits] required names them; the visit parser
# and the dialog fill them).
VISIT_FIELDS: tuple[str, ...] = (
    "customer",
    "ward",
    "contacts",
    "topics",
    "products",
    "objection",
    "commitments",
    "next_step",
    "attitude",
    "visited_at",
)

ENV_PREFIX = "SALESBOT__"
# HMAC keys shorter than this are refused (RFC 2104: at least the hash output, 32 bytes for SHA-256).
MIN_SECRET_BYTES = 32
CONFIG_ENV = "SALESBOT_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    # Bodies larger than this are refused before parsing (bytes).
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    # Where `serve` writes its process id, for `salesbot config reload` (unset: no file).
    pid_file: str | None = None


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
    # Monthly submission window: visits dated in month M can be created or corrected until the end of this day of
    # month M+1 (org time zone; December's until 10 January); 0 = no window. Both this and backdate_days apply.
    submission_cutoff_day: int = Field(10, ge=0, le=28)
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
    batch_size: int = Field(200, ge=1, le=1000)
    # Give up after this many attempts or this long after the message was written, whichever comes first; the row
    # stays visible as 'dead' in the outbox, the audit log and the metrics.
    max_attempts: int = Field(20, ge=1, le=1000)
    give_up_after_seconds: float = Field(6 * 3600, gt=0)
    backoff_base_seconds: float = Field(1.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    # Deliveries in flight at once (each to a different recipient). Each one's "call starts" mark and outcome share
    # a group commit with the others in flight, so more in flight means fewer transactions per reply (issue 9).
    concurrency: int = Field(32, ge=1, le=128)
    # A claimed row's lease, renewed every third of it while the delivery runs; a row whose worker died is retried
    # after it (at once when the next process on the same host can prove that worker dead, see bot/infra/leases.py).
    lease_seconds: float = Field(15.0, gt=0)


class ConsoleConfig(_Section):
    # None = on in demo mode, off otherwise.
    enabled: bool | None = None
    # HMAC key for console sign-in tokens (`salesbot console token USER`). Prefer SALESBOT__CONSOLE__TOKEN_SECRET.
    token_secret: SecretStr | None = None
    # Long-poll wait for new messages in the browser (seconds).
    poll_timeout_seconds: float = Field(25.0, gt=0, le=120)
    # A session ends after this long without a request, and in any case this long after sign-in.
    session_idle_hours: float = Field(12.0, gt=0, le=24 * 30)
    session_max_days: float = Field(7.0, gt=0, le=365)
    # How long a sign-in token from `salesbot console token USER` is valid unless --valid says otherwise.
    token_valid_days: float = Field(30.0, gt=0, le=3650)
    # Uploads (📎): the largest file, and what one person may upload per day (org time zone).
    upload_max_bytes: int = Field(5 * 1024 * 1024, ge=1024, le=50 * 1024 * 1024)
    uploads_per_day: int = Field(100, ge=1, le=100_000)
    upload_bytes_per_day: int = Field(100 * 1024 * 1024, ge=1024)


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
    """An enterprise internal app's robot (issue 13, docs/dingtalk.md). Secrets preferably from the environment:
    ``SALESBOT__DINGTALK__APP_SECRET``, ``SALESBOT__DINGTALK__CARD_API_SECRET``."""

    enabled: bool = False
    app_key: str = ""
    # The app's AppSecret: signs robot callbacks (HMAC-SHA256) and fetches the access token.
    app_secret: SecretStr = SecretStr("")
    robot_code: str = ""
    # The interactive card template imported into the org's 卡片平台 (cards/dingtalk_template.json); empty: task
    # cards go out as sampleActionCard messages with signed links back to the bot.
    card_template_id: str = ""
    # The route key the card callback URL is registered under, and the apiSecret that signs card taps.
    card_callback_route_key: str = ""
    card_api_secret: SecretStr = SecretStr("")
    api_base_url: str = "https://api.dingtalk.com"
    oapi_base_url: str = "https://oapi.dingtalk.com"
    # "http": callbacks to POST /dingtalk/callback and /dingtalk/card; "stream": the dingtalk-stream SDK's
    # outgoing connection (no public URL needed).
    mode: Literal["http", "stream"] = "http"
    # API calls a month the org's edition allows (standard edition: 5,000); admins are warned at 80 %.
    monthly_call_quota: int = Field(5000, ge=1)
    # The public URL of this bot (https://bot.example.com), for action links and the card callback registration.
    public_base_url: str = ""
    replay_window_seconds: int = Field(3600, ge=0, le=24 * 3600)
    request_timeout_seconds: float = Field(5.0, gt=0, le=60)
    # Signed action links (the no-template fallback) expire after this many hours.
    action_link_hours: float = Field(72.0, gt=0, le=24 * 30)

    @field_validator("api_base_url", "oapi_base_url", "public_base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> DingTalkConfig:
        if not self.enabled:
            return self
        missing = [
            k
            for k, v in (
                ("app_key", self.app_key),
                ("app_secret", self.app_secret.get_secret_value()),
                ("robot_code", self.robot_code),
            )
            if not v
        ]
        if self.card_template_id and not self.card_api_secret.get_secret_value():
            missing.append("card_api_secret")
        if self.card_template_id and not self.card_callback_route_key and self.mode == "http":
            missing.append("card_callback_route_key")
        if missing:
            raise ValueError(f"enabled but missing: {', '.join(missing)}")
        for key, secret in (("app_secret", self.app_secret), ("card_api_secret", self.card_api_secret)):
            value = secret.get_secret_value()
            if value and len(value.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"{key} is too short to be safe: at least {MIN_SECRET_BYTES} bytes")
        return self


# ---- support requests ----------------------------------------------------------------------------------------

# The longest lead time a request type may ask for (30 days).
MAX_LEAD_HOURS = 24 * 30.0

RequestFieldType = Literal["customer", "ward", "date", "text", "choice"]
_FIELD_KEY = r"^[a-z][a-z0-9_]{0,31}$"


class RequestFieldConfig(_Section):
    """One field a rep fills in when raising a request."""

    key: str = Field(pattern=_FIELD_KEY)
    label_zh: str = Field(min_length=1, max_length=10)
    label_en: str = Field(min_length=1, max_length=20)
    # customer / ward: directory lookups; date: a calendar date; choice: one of ``choices``; text: free text.
    type: RequestFieldType = "text"
    required: bool = True
    choices: list[str] = Field(default_factory=list)
    # Other words accepted before the colon in `key:value` (the labels and the key always work).
    aliases: list[str] = Field(default_factory=list)
    # For dates: refuse a date before today (a surgery is never in the past).
    not_before_today: bool = False
    max_length: int = Field(200, ge=1, le=2000)
    # For dates: the date the work is needed by (the surgery date, 需要日期); it caps the cards' deadlines (see
    # ``RequestTypeConfig.lead_hours``). At most one field per request type.
    needed_by: bool = False
    # For the needed-by date: a time of day may come with it (后天 8:00, 12-05 上午, 下午 2 点).
    time_of_day: bool = False

    @model_validator(mode="after")
    def _choices_for_choice(self) -> RequestFieldConfig:
        if self.type == "choice" and not self.choices:
            raise ValueError("a 'choice' field needs a non-empty 'choices' list")
        if self.type != "choice" and self.choices:
            raise ValueError("'choices' only applies to fields of type 'choice'")
        if self.not_before_today and self.type != "date":
            raise ValueError("'not_before_today' only applies to fields of type 'date'")
        if self.needed_by and self.type != "date":
            raise ValueError("'needed_by' only applies to fields of type 'date'")
        if self.time_of_day and not self.needed_by:
            raise ValueError("'time_of_day' only applies to the needed-by date (a date field with needed_by = true)")
        return self


class RequestTaskConfig(_Section):
    """The task card one department receives for a request."""

    department: str
    # Jinja2 templates over the request's fields plus customer, ward, requester, request_no, type_name.
    title_zh: str = Field(min_length=1)
    title_en: str = ""
    # Must someone claim (认领) the card before 完成?
    require_claim: bool = True
    # Evidence needed before 完成: none, or at least one photo / any attachment.
    evidence: Literal["none", "photo", "attachment"] = "none"
    # SLA in hours (working hours unless the request type says calendar hours): first response and completion.
    first_response_hours: float = Field(2.0, gt=0, le=24 * 30)
    complete_hours: float = Field(24.0, gt=0, le=24 * 90)


class RequestTypeConfig(_Section):
    """A kind of support request: its command words, its fields and the departments that act on it."""

    name_zh: str = Field(min_length=1, max_length=20)
    name_en: str = Field(min_length=1, max_length=40)
    keywords: list[str] = Field(min_length=1)
    fields: list[RequestFieldConfig] = Field(min_length=1)
    tasks: list[RequestTaskConfig] = Field(min_length=1)
    # Deadlines in calendar hours instead of working hours (surgery on a weekend must not wait for Monday).
    calendar_hours: bool = False
    # Offer this request as a button right after a visit is logged (the request is then linked to the visit).
    offer_after_visit: bool = False
    # Hours (calendar hours) before the needed-by date's need (its time of day, else the end of work that day) by
    # which the departments must be done: the cards' deadline is the earlier of the SLA and this (docs/requests.md).
    lead_hours: float = 0.0
    # Compliance's 完成 (a signed approval) needs a second factor: the tap sends a one-time 6-digit code privately
    # and the approval is made by 确认 <code> within 5 minutes (docs/compliance.md).
    approval_second_factor: bool = False

    @field_validator("lead_hours")
    @classmethod
    def _lead_hours_in_range(cls, v: float) -> float:
        if not math.isfinite(v) or not 0 <= v <= MAX_LEAD_HOURS:
            raise ValueError(
                f"lead_hours must be between 0 and {MAX_LEAD_HOURS:g} (hours before the needed-by date that the work"
                f" must be done; got {v!r})"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RequestTypeConfig:
        keys = [f.key for f in self.fields]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"duplicate field key(s): {', '.join(dupes)}")
        if "customer" not in keys:
            raise ValueError("a request type needs a field with key 'customer' (type 'customer')")
        types = {f.key: f.type for f in self.fields}
        if types["customer"] != "customer":
            raise ValueError("field 'customer' must have type 'customer'")
        if "ward" in types and types["ward"] != "ward":
            raise ValueError("field 'ward' must have type 'ward'")
        needed = [f.key for f in self.fields if f.needed_by]
        if len(needed) > 1:
            raise ValueError(f"only one field may be the needed-by date (needed_by = true): {', '.join(needed)}")
        departments = [t.department for t in self.tasks]
        if len(set(departments)) != len(departments):
            raise ValueError("a department may receive only one task per request type")
        return self


def _field(key: str, zh: str, en: str, type_: str = "text", **kw: Any) -> RequestFieldConfig:
    return RequestFieldConfig.model_validate({"key": key, "label_zh": zh, "label_en": en, "type": type_, **kw})


def _task(department: str, zh: str, en: str, **kw: Any) -> RequestTaskConfig:
    return RequestTaskConfig.model_validate({"department": department, "title_zh": zh, "title_en": en, **kw})


def _default_request_types() -> dict[str, RequestTypeConfig]:
    hospital = _field("customer", "医院", "Hospital", "customer", aliases=["客户"])
    ward = _field("ward", "科室", "Ward", "ward")
    note = _field("note", "备注", "Note", required=False, aliases=["说明", "remark"], max_length=500)
    return {
        "surgery_support": RequestTypeConfig(
            name_zh="手术跟台",
            name_en="Surgery support",
            keywords=["跟台", "surgery"],
            fields=[
                hospital,
                ward,
                _field(
                    "surgery_date",
                    "手术日期",
                    "Date",
                    "date",
                    not_before_today=True,
                    aliases=["日期", "date"],
                    needed_by=True,
                    time_of_day=True,
                ),
                _field("kit", "器械", "Kit", aliases=["器械包", "套包", "kit"]),
                note,
            ],
            tasks=[
                _task("marketing", "跟台资料：{{ customer }} {{ kit }}", "Surgery material: {{ customer }} {{ kit }}"),
                _task(
                    "logistics",
                    "备器械 {{ kit }}（{{ surgery_date }}）",
                    "Reserve kit {{ kit }} ({{ surgery_date }})",
                    evidence="photo",
                ),
                _task("compliance", "授权审核：{{ customer }}", "Authorisation review: {{ customer }}"),
            ],
            calendar_hours=True,
            offer_after_visit=True,
        ),
        "demo_unit": RequestTypeConfig(
            name_zh="样机申请",
            name_en="Demo unit",
            keywords=["样机", "demo"],
            fields=[
                hospital,
                ward,
                _field("model", "型号", "Model", aliases=["机型", "设备"]),
                _field("until", "归还日期", "Return by", "date", required=False, not_before_today=True),
                note,
            ],
            tasks=[
                _task("logistics", "样机出库 {{ model }}", "Ship demo unit {{ model }}", evidence="photo"),
                _task("compliance", "样机合规审核：{{ customer }}", "Demo unit review: {{ customer }}"),
            ],
            offer_after_visit=True,
        ),
        "material": RequestTypeConfig(
            name_zh="资料申请",
            name_en="Material",
            keywords=["资料", "material"],
            fields=[
                hospital,
                _field("ward", "科室", "Ward", "ward", required=False),
                _field("topic", "内容", "Content", aliases=["资料", "主题", "topic"]),
                note,
            ],
            tasks=[_task("marketing", "准备资料：{{ topic }}", "Prepare material: {{ topic }}", evidence="attachment")],
        ),
        "stock_reservation": RequestTypeConfig(
            name_zh="备货",
            name_en="Stock reservation",
            keywords=["备货", "stock"],
            fields=[
                hospital,
                _field("product", "产品", "Product", aliases=["货品", "product"]),
                _field("quantity", "数量", "Qty", aliases=["qty"]),
                _field(
                    "needed_by",
                    "需要日期",
                    "Needed by",
                    "date",
                    not_before_today=True,
                    aliases=["日期"],
                    needed_by=True,
                ),
                note,
            ],
            tasks=[_task("logistics", "备货 {{ product }} × {{ quantity }}", "Reserve {{ product }} × {{ quantity }}")],
            lead_hours=24.0,
        ),
    }


# ---- escalation ------------------------------------------------------------------------------------------------

_TARGET = r"^(head|director|department|holder|requester|user:[A-Za-z0-9_.@-]{1,64}|role:[a-z]{1,16})$"


class EscalationLevelConfig(_Section):
    """One rung of the ladder: when it fires, whom it tells, whether it repeats."""

    # not_claimed: nobody has responded (claimed or asked); not_done: the card is not closed.
    trigger: Literal["not_claimed", "not_done"]
    # The delay counts from the card's creation: the card's own SLA (first_response / complete) and/or hours.
    after_sla: Literal["first_response", "complete"] | None = None
    after_hours: float = Field(0.0, ge=0, le=24 * 90)
    # head, director, department (all members), holder, requester, user:<id>, role:<role>
    notify: list[str] = Field(min_length=1)
    # Fire again every N hours while the trigger still holds (0 = once).
    repeat_every_hours: float = Field(0.0, ge=0, le=24 * 30)

    @field_validator("notify")
    @classmethod
    def _known_targets(cls, v: list[str]) -> list[str]:
        import re

        bad = [t for t in v if not re.fullmatch(_TARGET, t)]
        if bad:
            raise ValueError(
                f"unknown target(s) {bad}; use head, director, department, holder, requester, user:<id> or role:<role>"
            )
        return v

    @model_validator(mode="after")
    def _has_delay(self) -> EscalationLevelConfig:
        if self.after_sla is None and self.after_hours <= 0:
            raise ValueError("give after_sla and/or after_hours > 0")
        if self.repeat_every_hours and self.repeat_every_hours < 0.25:
            raise ValueError("repeat_every_hours must be at least 0.25 (or 0 for no repeat)")
        return self


def _default_levels() -> list[EscalationLevelConfig]:
    return [
        EscalationLevelConfig(trigger="not_claimed", after_sla="first_response", notify=["head"]),
        EscalationLevelConfig(trigger="not_done", after_sla="complete", notify=["head"]),
        EscalationLevelConfig(
            trigger="not_done", after_sla="complete", after_hours=8, notify=["director"], repeat_every_hours=8
        ),
    ]


class EscalationPolicyConfig(_Section):
    """Levels and the reminder; overrides per department / request type replace the levels they give."""

    levels: list[EscalationLevelConfig] | None = None
    # Remind the holder (or the department while unclaimed) at this fraction of the current deadline (0 = never).
    remind_at: float | None = Field(None, ge=0, lt=1)


class EscalationConfig(_Section):
    enabled: bool = True
    # How often the scheduler looks for due cards.
    sweep_interval_seconds: float = Field(30.0, ge=1, le=3600)
    # Cards handled per transaction in one sweep.
    batch_size: int = Field(50, ge=1, le=5000)
    levels: list[EscalationLevelConfig] = Field(default_factory=_default_levels, min_length=1)
    remind_at: float = Field(0.75, ge=0, lt=1)
    departments: dict[str, EscalationPolicyConfig] = Field(default_factory=dict)
    request_types: dict[str, EscalationPolicyConfig] = Field(default_factory=dict)


class SchedulerConfig(_Section):
    """Periodic jobs (bot/jobs.py): each period runs once across restarts and replicas (``job_runs``). Their crons
    are in [org] timezone."""

    # A period may still be started this long after its fire time (late, retried, taken over, or caught up after
    # downtime: only the most recent missed period runs). Jobs may set their own window.
    catch_up_hours: float = Field(24.0, ge=1 / 60, le=31 * 24)
    # How often every periodic job's due period is looked at again (retries, take-overs, periods a replica missed).
    check_interval_seconds: float = Field(60.0, ge=1, le=3600)
    # A run is cancelled after this long (counted as failed); a 'running' row this old is taken over by another
    # process even if its owner may be alive. Jobs may set their own.
    run_timeout_minutes: float = Field(60.0, gt=0, le=24 * 60)
    # Runs per period (the first plus retries after failures or take-overs); then the period is given up.
    max_attempts: int = Field(3, ge=1, le=20)


_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class PlansConfig(_Section):
    """Visit plans (docs/plans.md): how often each customer grade should be visited, and optional reminders."""

    # Visits per month a customer of each grade should get: feeds the digest's coverage of A customers.
    frequency: dict[str, int] = Field(default_factory=lambda: {"A": 4, "B": 2, "C": 1})
    # "HH:MM" (org time, working days): the morning list of today's plan to each rep who has one; "" = off.
    morning_reminder: str = Field("", pattern=r"^$|" + _HHMM)
    # "HH:MM": a nudge to each rep whose plan for today still has open items; "" = off.
    open_items_nudge: str = Field("", pattern=r"^$|" + _HHMM)

    @field_validator("frequency")
    @classmethod
    def _frequency_ok(cls, value: dict[str, int]) -> dict[str, int]:
        for grade, per_month in value.items():
            if len(grade) != 1 or not grade.isalpha():
                raise ValueError(f"grade {grade!r}: one letter (A, B, C …)")
            if not 0 <= per_month <= 31:
                raise ValueError(f"grade {grade}: {per_month} visits a month must be between 0 and 31")
        return {grade.upper(): n for grade, n in value.items()}


class DigestConfig(_Section):
    """The managers' daily digest (docs/digest.md)."""

    # The scheduled pushes (the 18:00 digest, follow-ups, the weekly objections); 日报 on demand works either way.
    enabled: bool = True
    # When the digest is pushed, org time, on working days of the working calendar.
    time: str = Field("18:00", pattern=_HHMM)
    # A rep's plan completion below this is an exception (reps below it first, and a follow-up card).
    plan_threshold: float = Field(0.92, ge=0, le=1)
    # A-grade customers without a visit for this many days are listed.
    a_customer_gap_days: int = Field(30, ge=1, le=366)
    # First response (open → claimed or need info) target per department.
    first_response_target_hours: float = Field(2.0, gt=0, le=24 * 14)
    # A follow-up card to the manager for each rep below the threshold at the digest time.
    followup: bool = True
    # Weekly: the week's top objections with example notes, as a card to this department ("" = off).
    weekly_objections_department: str = "marketing"
    # The weekday (1 = Monday … 7 = Sunday) and time the weekly objections go out.
    weekly_objections_weekday: int = Field(5, ge=1, le=7)
    weekly_objections_time: str = Field("17:00", pattern=_HHMM)
    # A directory whose templates override cards/templates/digest*.j2 (same names); "" = the built-in ones.
    templates_dir: str = ""
    # With a day digest covering more than one rep: a chart (plan completion per rep, the last 7 working days) as an
    # image, on channels that show images (docs/digest.md "The chart").
    chart: bool = True
    # A TTF / OTF / WOFF font for the chart instead of the bundled WenQuanYi Micro Hei subset; "" = the bundled one.
    chart_font: str = ""

    @field_validator("chart_font")
    @classmethod
    def _font_readable(cls, value: str) -> str:
        if not value:
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValueError(f"no such font file: {value}")
        from PIL import ImageFont  # only when set: reading the font is the check

        try:
            ImageFont.truetype(str(path), 24)
        except OSError as exc:
            raise ValueError(f"not a font Pillow can read (TTF, OTF, TTC or WOFF): {value}") from exc
        return str(path)


class ScoreConfig(_Section):
    """The nightly customer health score (docs/customers.md "The score").

    Three components, each normalised to 0–100, weighted into a score of 0–100:

    - purchases: the amount bought in the last ``purchases_months`` calendar months (the night's month included);
    - trials: the new-product trials in the last ``trials_days`` days;
    - events: the academic-event attendees in the last ``events_days`` days.

    ``method = "percentile"``: a component is the customer's percentile among the org's customers with a non-zero
    value (the highest gets 100; none at all gets 0). ``method = "target"``: a component is value / target × 100,
    capped at 100 (``*_target``).
    """

    # Org time, every day: when the night's scores (and the alerts read from them) are computed.
    time: str = Field("02:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    method: Literal["percentile", "target"] = "percentile"
    purchases_weight: float = Field(0.4, ge=0, le=1)
    trials_weight: float = Field(0.3, ge=0, le=1)
    events_weight: float = Field(0.3, ge=0, le=1)
    purchases_months: int = Field(3, ge=1, le=36)
    trials_days: int = Field(90, ge=1, le=3 * 366)
    events_days: int = Field(90, ge=1, le=3 * 366)
    # With method = "target": the value that scores 100 (yuan; trials; attendees).
    purchases_target: float = Field(100_000.0, gt=0)
    trials_target: float = Field(3.0, gt=0)
    events_target: float = Field(20.0, gt=0)
    # Nightly rows older than this many days are thinned to one a week (the Monday's), so trends stay readable.
    keep_nightly_days: int = Field(120, ge=60, le=3 * 366)

    @model_validator(mode="after")
    def _weights_sum_to_one(self) -> ScoreConfig:
        total = self.purchases_weight + self.trials_weight + self.events_weight
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(
                f"purchases_weight + trials_weight + events_weight must add up to 1 (they add up to {total:g})"
            )
        return self


class GradesConfig(_Section):
    """Grade suggestions from the score (docs/customers.md "Grades"): the lowest score each grade needs.

    The highest grade whose threshold the score reaches is suggested; it is shown beside the current grade and
    changes nothing by itself (a grade changes only through 调级).
    """

    thresholds: dict[str, float] = Field(default_factory=lambda: {"A": 80.0, "B": 60.0, "C": 0.0})

    @field_validator("thresholds")
    @classmethod
    def _thresholds_ok(cls, value: dict[str, float]) -> dict[str, float]:
        if not value:
            raise ValueError("at least one grade")
        out: dict[str, float] = {}
        for grade, floor in value.items():
            if len(grade) != 1 or not grade.isalpha():
                raise ValueError(f"grade {grade!r}: one letter (A, B, C …)")
            if not 0 <= floor <= 100:
                raise ValueError(f"grade {grade}: threshold {floor:g} must be between 0 and 100")
            out[grade.upper()] = float(floor)
        if min(out.values()) != 0:
            raise ValueError("the lowest grade's threshold must be 0, so every score gets a suggestion")
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))


AlertKind = Literal["component_zero", "score_drop", "no_visit", "worth_developing", "same_objection"]
SCORE_COMPONENTS = ("purchases", "trials", "events")


class AlertRuleConfig(_Section):
    """One alert rule (docs/customers.md "Alerts"); which parameters matter depends on ``kind``:

    - ``component_zero``: ``component`` at 0 on every night of the last ``weeks`` weeks;
    - ``score_drop``: the score fell by more than ``points`` over the last ``weeks`` weeks;
    - ``no_visit``: a customer of ``grade`` without a (submitted) visit for ``days`` days;
    - ``worth_developing``: score below ``below`` but some component (or ``component``) at or above ``at_least``;
    - ``same_objection``: the customer's last ``visits`` visits all with the same objection.
    """

    kind: AlertKind
    # Shown to people: "新品试用停滞".
    title: str = Field(min_length=1, max_length=40)
    component: Literal["purchases", "trials", "events", ""] = ""
    weeks: int = Field(2, ge=1, le=52)
    points: float = Field(15.0, gt=0, le=100)
    grade: str = Field("A", min_length=1, max_length=1)
    days: int = Field(30, ge=1, le=366)
    below: float = Field(70.0, gt=0, le=100)
    at_least: float = Field(90.0, gt=0, le=100)
    visits: int = Field(3, ge=2, le=20)
    # Who is told: the customer's rep, the rep's manager.
    notify: tuple[Literal["rep", "manager"], ...] = ("rep", "manager")
    # At most once per customer in this many days (the alert's period).
    every_days: int = Field(7, ge=1, le=366)
    # red: needs action; info: a signal (worth developing).
    level: Literal["red", "info"] = "red"

    @model_validator(mode="after")
    def _params_ok(self) -> AlertRuleConfig:
        if self.kind == "component_zero" and not self.component:
            raise ValueError("kind = 'component_zero' needs component = 'purchases', 'trials' or 'events'")
        if not self.notify:
            raise ValueError("notify must name someone: 'rep', 'manager' or both")
        self.grade = self.grade.upper()
        return self


def _default_alert_rules() -> dict[str, AlertRuleConfig]:
    return {
        "trials_stalled": AlertRuleConfig(kind="component_zero", title="新品试用停滞", component="trials", weeks=2),
        "score_drop": AlertRuleConfig(kind="score_drop", title="健康分下滑", points=15, weeks=4),
        "a_no_visit": AlertRuleConfig(kind="no_visit", title="A 类客户久未拜访", grade="A", days=30),
        "worth_developing": AlertRuleConfig(
            kind="worth_developing", title="值得开发", below=70, at_least=90, level="info", every_days=30
        ),
        "same_objection": AlertRuleConfig(kind="same_objection", title="异议反复出现", visits=3, every_days=14),
    }


class CustomersConfig(_Section):
    """Customers: the nightly health score, grade suggestions, alerts (docs/customers.md)."""

    # The nightly job (score + alerts); off: neither runs (客户 still shows what was computed before).
    enabled: bool = True
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    grades: GradesConfig = Field(default_factory=GradesConfig)
    # Rule name (letters, digits, _ and -) → rule; an empty table turns every alert off.
    alerts: dict[str, AlertRuleConfig] = Field(default_factory=_default_alert_rules)

    @field_validator("alerts")
    @classmethod
    def _rule_names_ok(cls, value: dict[str, AlertRuleConfig]) -> dict[str, AlertRuleConfig]:
        for name in value:
            if not name or len(name) > 32 or not all(c.isascii() and (c.isalnum() or c in "_-") for c in name):
                raise ValueError(f"rule name {name!r}: up to 32 letters, digits, _ or -")
        return value


# The types the attachment store accepts by default (sniffed from the bytes, see bot.services.console_media.sniff).
DEFAULT_ATTACHMENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text/plain",
    "video/mp4",
    "audio/amr",
    "audio/silk",
    "audio/mpeg",
)


class AttachmentsConfig(_Section):
    """The bot's own copy of every photo and file (docs/attachments.md)."""

    # The store's folder (relative paths are relative to the working directory); back it up with the database.
    dir: str = "data/attachments"
    # The largest file kept (a larger one is refused with a short message to the sender).
    max_bytes: int = Field(20 * 1024 * 1024, ge=1024, le=200 * 1024 * 1024)
    # Content types kept, as sniffed from the bytes (the sender's or platform's claim is ignored).
    allowed_types: tuple[str, ...] = DEFAULT_ATTACHMENT_TYPES
    # Downloading a received file: attempts while the platform still holds it, and the first pause between them
    # (doubled each time); after the last the message is handled with the platform's own media id.
    fetch_attempts: int = Field(3, ge=1, le=10)
    fetch_backoff_seconds: float = Field(1.0, ge=0, le=60)

    @field_validator("allowed_types")
    @classmethod
    def _known_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [v for v in value if v not in DEFAULT_ATTACHMENT_TYPES]
        if unknown:
            raise ValueError(f"unknown type(s) {unknown}; known: {', '.join(DEFAULT_ATTACHMENT_TYPES)}")
        return value


class AuditConfig(_Section):
    """The tamper-evident audit chain (docs/audit.md)."""

    # HMAC key of the chain (≥ 32 bytes): with it, someone with only database access cannot recompute a
    # consistent forged chain. Unset: plain SHA-256. Prefer SALESBOT__AUDIT__CHAIN_KEY. Set it before the first
    # row is chained (or before `salesbot db upgrade` to 0017): rows hashed with another key no longer verify.
    chain_key: SecretStr | None = None
    # The daily anchor (head seq, hash, count) at this local time, written to every place of ``anchors``:
    # "file:/path/anchors.jsonl" (one JSON line appended) or "log" (an INFO line of the log).
    anchor_time: str = Field("00:30", pattern=_HHMM)
    anchors: list[str] = Field(default_factory=list)

    @field_validator("chain_key")
    @classmethod
    def _long_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"audit.chain_key must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("anchors")
    @classmethod
    def _places(cls, value: list[str]) -> list[str]:
        for place in value:
            if place != "log" and not (place.startswith("file:") and len(place) > len("file:")):
                raise ValueError(f'unknown anchor place {place!r}: use "file:/path/anchors.jsonl" or "log"')
        return value

    def key_bytes(self) -> bytes | None:
        return self.chain_key.get_secret_value().encode() if self.chain_key else None


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
    attachments: AttachmentsConfig = Field(default_factory=AttachmentsConfig)
    calendar: WorkCalendarConfig = Field(default_factory=WorkCalendarConfig)
    request_types: dict[str, RequestTypeConfig] = Field(default_factory=_default_request_types)
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    plans: PlansConfig = Field(default_factory=PlansConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    customers: CustomersConfig = Field(default_factory=CustomersConfig)
    wecom: WeComConfig = Field(default_factory=WeComConfig)
    dingtalk: DingTalkConfig = Field(default_factory=DingTalkConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)

    @property
    def console_enabled(self) -> bool:
        return self.org.demo if self.console.enabled is None else self.console.enabled

    @model_validator(mode="after")
    def _console_signin_possible(self) -> Settings:
        if self.console_enabled and not self.org.demo:
            if self.console.token_secret is None:
                raise ValueError("console.token_secret is required when the console is enabled outside demo mode")
            if len(self.console.token_secret.get_secret_value().encode()) < MIN_SECRET_BYTES:
                raise ValueError(
                    f"console.token_secret must be at least {MIN_SECRET_BYTES} bytes (anyone could forge sign-in "
                    "tokens with a short one); generate one with: python -c "
                    "'import secrets; print(secrets.token_urlsafe(48))'"
                )
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


def parse_settings(data: dict[str, Any], source: str = "<config>", reserved: Collection[str] = ()) -> Settings:
    """Validate a raw mapping; raise ConfigError listing every problem.

    ``reserved``: the words built-in commands answer (folded), refused as request-type keywords. The routers declare
    them (``handlers.command_words()``); the composition root passes them (``bot.cli``, ``bot.runtime``), since
    configuration sits below the handlers."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _issues_from(exc)) from None
    # Checks across sections (departments, keywords, templates), each located by its TOML path.
    issues = [ConfigIssue(path, message) for path, message in check_request_types(settings, frozenset(reserved))]
    if issues:
        raise ConfigError(source, issues)
    return settings


def load_settings(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None, reserved: Collection[str] = ()
) -> Settings:
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
    return parse_settings(data, source, reserved)


def resolve_config_path(path: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The --config option, else SALESBOT_CONFIG, else None (defaults)."""
    env = os.environ if environ is None else environ
    return path or env.get(CONFIG_ENV) or None
