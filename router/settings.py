"""Settings from the environment (`CAIRN_*`); secrets are SecretStr and never printed."""

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.access import Role, parse_grant
from store.engine import DEFAULT_DATABASE_URL

_HEADER = r"^[A-Za-z0-9-]{1,64}$"
MIN_PROXY_SECRET = 32


class Settings(BaseSettings):
    """Everything `cairn serve` and `cairn worker` read at start-up."""

    model_config = SettingsConfigDict(env_prefix="CAIRN_", extra="ignore", frozen=True)

    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    broker_url: SecretStr | None = Field(
        default=None,
        description="amqp://… for RabbitMQ, nats://… for NATS JetStream; unset for the "
        "embedded default.",
    )
    broker_prefix: str = Field(default="cairn", pattern=r"^[a-z][a-z0-9_.-]{0,40}$")
    generic_webhook_secret: SecretStr | None = None
    generic_mapping: Path | None = Field(
        default=None,
        description="YAML mapping any tracker's JSON to incidents on /hooks/generic.",
    )
    pagerduty_webhook_secret: SecretStr | None = None
    pagerduty_api_token: SecretStr | None = None
    pagerduty_api_url: str = Field(default="https://api.pagerduty.com", pattern=r"^https?://\S+$")
    incidentio_webhook_secret: SecretStr | None = None
    incidentio_api_key: SecretStr | None = None
    incidentio_api_url: str = Field(default="https://api.incident.io", pattern=r"^https?://\S+$")
    opsgenie_webhook_token: SecretStr | None = None
    github_webhook_secret: SecretStr | None = None
    github_token: SecretStr | None = Field(
        default=None, description="A personal access token; or use the GitHub App settings."
    )
    github_app_id: str | None = None
    github_app_private_key: SecretStr | None = Field(
        default=None, description="The App's PEM private key (the text, not a path)."
    )
    github_installation_id: str | None = Field(default=None, pattern=r"^\d*$")
    github_api_url: str = Field(default="https://api.github.com", pattern=r"^https?://\S+$")
    github_actor: str | None = Field(
        default=None, description="The login Cairn writes to GitHub as (its own edits)."
    )
    github_seconds_between_requests: float = Field(
        default=0.25,
        ge=0,
        le=60,
        description="Pause between GitHub API calls per process (GitHub's guidance; 0 only "
        "against a fake).",
    )
    github_seconds_between_writes: float = Field(
        default=1.0,
        ge=0,
        le=60,
        description="Pause between GitHub writes per process (GitHub's secondary rate limit "
        "guidance; 0 only against a fake).",
    )
    github_teams: dict[str, str] = Field(
        default_factory=dict, description='Author login → team, JSON: {"octocat": "payments"}.'
    )
    github_template_repositories: str = Field(
        default="",
        pattern=r"^\s*([\w.-]+/[\w.-]+\s*(,\s*[\w.-]+/[\w.-]+\s*)*)?$",
        description="Comma-separated `owner/name`s whose pull-request templates template rules "
        "may reach besides the repositories Cairn has seen pull requests in.",
    )
    jira_webhook_secret: SecretStr | None = None
    jira_url: str | None = Field(
        default=None, pattern=r"^https?://\S+$", description="https://<site>.atlassian.net"
    )
    jira_email: str | None = Field(default=None, description="The Atlassian account Cairn uses.")
    jira_api_token: SecretStr | None = None
    jira_account_id: str | None = Field(
        default=None, description="That account's accountId: its own edits are ignored."
    )
    jira_team_field: str | None = Field(
        default=None, description="A custom field id (customfield_10001) holding the team."
    )
    lms: str | None = Field(
        default=None,
        pattern=r"^(moodle|canvas)?$",
        description="The LMS lessons are assigned in as training: `moodle` or `canvas`.",
    )
    moodle_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    moodle_token: SecretStr | None = Field(
        default=None, description="A Moodle web-service token (wstoken)."
    )
    canvas_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    canvas_token: SecretStr | None = None
    canvas_account_id: str = Field(default="self", description="Where learners are looked up.")
    canvas_live_events_jwks: str | None = Field(
        default=None,
        description="Canvas's Live Events signing keys: a JWKS document, or the path of a file "
        "holding one (unset: POST /hooks/canvas answers 404).",
    )
    canvas_live_events_issuer: str | None = Field(
        default=None, description="The `iss` Live Event JWTs must carry (unset: not checked)."
    )
    canvas_live_events_audience: str | None = Field(
        default=None, description="The `aud` Live Event JWTs must carry (unset: none allowed)."
    )
    xapi_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="A learning record store to poll for completions (…/xAPI/ is appended).",
    )
    xapi_username: str | None = None
    xapi_password: SecretStr | None = None
    xapi_push_secret: SecretStr | None = Field(
        default=None, description="Bearer secret statements pushed to /hooks/xapi must carry."
    )
    training_sync_seconds: float = Field(
        default=300.0, gt=0, description="How often learners, assignments and progress are synced."
    )
    rules_path: Path | None = Field(
        default=None, description="A rule file or a directory of *.yaml rule packs."
    )
    rules_reload_seconds: float = Field(
        default=5.0, gt=0, description="How often the rule files are checked for changes."
    )

    public_url: str = Field(
        default="http://127.0.0.1:8000",
        pattern=r"^https?://[^\s]+$",
        description="Where people reach this Cairn; links placed in targets point here.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    keep_alive_seconds: int = Field(
        default=75,
        ge=1,
        description="An idle keep-alive connection is closed after this; keep it above the "
        "idle timeout of any load balancer or proxy in front (AWS ALB: 60 s).",
    )
    max_api_body_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="Any request body over this is refused (413) before a route reads it.",
    )
    concurrency: int = Field(default=4, ge=1, le=256, description="Handlers run at once.")
    poll_interval: float = Field(default=0.5, gt=0, description="Idle worker wake-up, seconds.")
    lease_seconds: float = Field(
        default=30.0, gt=0, description="A claimed message is handed out again after this."
    )
    max_attempts: int = Field(default=8, ge=1, description="Tries before dead-lettering.")
    republish_seconds: float = Field(
        default=300.0,
        gt=0,
        description="Broker mode: a published message not done after this is published again.",
    )
    delivery_limit: int = Field(default=5, ge=1, description="RabbitMQ x-delivery-limit.")

    overdue_sweep_seconds: float = Field(
        default=60.0, gt=0, description="How often mandated placements past due are marked."
    )
    reminder_window_hours: float = Field(
        default=168.0,
        ge=0,
        description="An overdue placement is reminded on its PR or ticket at most once per this "
        "many hours; 0 turns reminders off.",
    )
    digest_webhook_url: str | None = Field(
        default=None,
        pattern=r"^(https?://\S+)?$",
        description="Where each owner team's overdue digest is POSTed; unset: not pushed.",
    )
    digest_webhook_secret: SecretStr | None = Field(
        default=None, description="The whsec_… secret digests are signed with (Standard Webhooks)."
    )
    digest_interval_hours: float = Field(
        default=24.0, gt=0, description="Each owner's digest is pushed at most once per this."
    )
    cadence: str = Field(
        default="off",
        pattern=r"^(off|daily|weekly)$",
        description="The review cadence inside `cairn serve` and `cairn worker`: each owner "
        "team's issue of lessons to review is opened or updated this often (`off`: only "
        "`cairn cadence run`).",
    )
    flag_precision_below: float = Field(
        default=0.3, ge=0, le=1, description="Flag a rule or lesson whose precision falls below."
    )
    flag_min_outcomes: int = Field(
        default=10, ge=1, description="…once it has at least this many decided placements."
    )
    capture_jira_types: str = Field(
        default="Postmortem,Post-incident review,Retro",
        description="Jira issue types (comma-separated) whose done issues become draft lessons.",
    )
    capture_jira_labels: str = Field(
        default="lesson-learned", description="…or done Jira issues carrying one of these labels."
    )
    capture_github_labels: str = Field(
        default="lesson", description="Closed GitHub issues and discussions with these labels."
    )
    capture_github_paths: str = Field(
        default="docs/postmortems/*.md",
        description="Globs of files a merged pull request adds that become drafts (empty: off).",
    )
    capture_project_teams: dict[str, str] = Field(
        default_factory=dict,
        description='Jira project or GitHub repo → owner team, JSON: {"PM": "payments"}.',
    )
    capture_headings: Path | None = Field(
        default=None, description="YAML mapping section headings to lesson fields (optional)."
    )
    capture_notify_author: bool = Field(
        default=False, description="Comment on the source with a link to its draft lesson."
    )
    capture_min_statement_chars: int = Field(
        default=40, ge=0, le=2000, description="Review warns about shorter statements."
    )
    capture_slogans: str = Field(
        default="communicate better,be more careful,pay more attention,be careful,test more",
        description="Statements containing one of these (comma-separated) are flagged as weak.",
    )
    metrics_token: SecretStr | None = Field(
        default=None, description="A bearer token `/metrics` asks scrapers for; unset: open."
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="`cairn worker` serves /metrics on this port."
    )
    log_format: str = Field(
        default="text",
        pattern=r"^(text|json)$",
        description="`json`: one JSON object per log line, with the delivery's correlation id.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        pattern=r"^(https?://\S+)?$",
        description="OTLP/HTTP collector spans are sent to (…/v1/traces); unset: tracing off.",
    )
    trusted_user_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{0,64}$",
        description="SSO proxy mode: the header carrying the signed-in user (X-Forwarded-User).",
    )
    trusted_groups_header: str = Field(
        default="X-Forwarded-Groups",
        pattern=_HEADER,
        description="SSO proxy mode: the header carrying the user's groups, comma-separated.",
    )
    trusted_proxy_secret_header: str = Field(
        default="X-Cairn-Proxy-Secret",
        pattern=_HEADER,
        description="SSO proxy mode: the header in which the proxy proves itself.",
    )
    trusted_proxy_secret: SecretStr | None = Field(
        default=None, description="SSO proxy mode: the shared secret the proxy sends (>= 32 chars)."
    )
    group_roles: dict[str, str] = Field(
        default_factory=dict,
        description='SSO group → role, JSON: {"sre": "reviewer", "pay-devs": "owner:payments"}.',
    )
    ui_secret: SecretStr | None = Field(
        default=None,
        description=(
            "Signs dashboard session cookies and form tokens (>= 32 chars). Unset: a random "
            "key per process, so sign-ins end at a restart; set it when several replicas serve."
        ),
    )
    ui_session_hours: float = Field(
        default=8.0, gt=0, le=24 * 30, description="A dashboard sign-in lasts this long."
    )
    auth_failures_per_minute: int = Field(
        default=20, ge=1, description="Failed logins one client may make per minute, then 429."
    )

    @model_validator(mode="after")
    def _proxy_mode_is_whole(self) -> Self:
        """Proxy mode needs its secret; every group maps to a known role."""
        for group, grant in self.group_roles.items():
            try:
                parse_grant(grant)
            except ValueError as exc:
                raise ValueError(f"CAIRN_GROUP_ROLES[{group!r}]: {exc}") from None
        if self.trusted_user_header:
            secret = self.trusted_proxy_secret
            if secret is None or len(secret.get_secret_value()) < MIN_PROXY_SECRET:
                raise ValueError(
                    "CAIRN_TRUSTED_USER_HEADER needs CAIRN_TRUSTED_PROXY_SECRET "
                    f"of at least {MIN_PROXY_SECRET} characters"
                )
        ui_secret = self.ui_secret
        if ui_secret is not None and len(ui_secret.get_secret_value()) < MIN_PROXY_SECRET:
            raise ValueError(f"CAIRN_UI_SECRET must be at least {MIN_PROXY_SECRET} characters")
        return self

    @model_validator(mode="after")
    def _digest_is_signed(self) -> Self:
        """A digest URL needs the secret its webhooks are signed with."""
        secret = self.digest_webhook_secret
        if self.digest_webhook_url and (secret is None or not secret.get_secret_value()):
            raise ValueError("CAIRN_DIGEST_WEBHOOK_URL needs CAIRN_DIGEST_WEBHOOK_SECRET")
        return self

    @staticmethod
    def listed(value: str) -> tuple[str, ...]:
        """A comma-separated setting as its non-empty items."""
        return tuple(item.strip() for item in value.split(",") if item.strip())

    @property
    def reminder_window(self) -> timedelta:
        """CAIRN_REMINDER_WINDOW_HOURS as a duration (zero: reminders are off)."""
        return timedelta(hours=self.reminder_window_hours)

    @cached_property
    def group_grants(self) -> dict[str, tuple[Role, str | None]]:
        """CAIRN_GROUP_ROLES parsed: group → (role, team for owners)."""
        return {group: parse_grant(grant) for group, grant in self.group_roles.items()}

    @cached_property
    def broker_mode(self) -> bool:
        """True when a broker URL is configured."""
        return self.broker_url is not None and bool(self.broker_url.get_secret_value())

    def redacted_database_url(self) -> str:
        """The database URL with any password masked, for logs."""
        return mask_password(self.database_url.get_secret_value())

    def redacted_broker_url(self) -> str:
        """The broker URL with any password masked, for logs; `embedded` when unset."""
        if not self.broker_mode or self.broker_url is None:
            return "embedded"
        return mask_password(self.broker_url.get_secret_value())


def mask_password(url: str) -> str:
    """The URL with its password masked, in the user part and in a `password=` parameter."""
    parts = urlsplit(url)
    secret_keys = ("password", "passwd", "pwd")
    query = parse_qsl(parts.query, keep_blank_values=True)
    if parts.password is None and not any(k.lower() in secret_keys for k, _ in query):
        return url
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    masked = [(k, "***" if k.lower() in secret_keys else v) for k, v in query]
    return urlunsplit(parts._replace(query=urlencode(masked, safe="*")))
