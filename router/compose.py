"""Composition root: builds the database, dispatcher, transport, verifiers and targets.

The GitHub and Jira targets are built here rather than in `connectors/`: turning `Settings` into a
connector is composition, and connectors never see `Settings` (the layer contract forbids it).
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from connectors.base import Enricher, Verifier
from connectors.canvas.client import CanvasClient
from connectors.github.capture import GitHubSourceReader
from connectors.github.target import GitHubTarget
from connectors.jira.capture import JiraSourceReader
from connectors.jira.client import Credentials
from connectors.jira.target import JiraTarget
from connectors.lms import LmsClient
from connectors.lms_target import LmsTarget
from connectors.moodle.client import MoodleClient
from connectors.registry import SOURCES
from connectors.target import Target
from core.errors import ConfigurationError
from core.work import System
from core.work_capture import DEFAULT_HEADINGS, CaptureConfig, load_headings
from router.observability import changes, outbound
from router.observability.stages import instrument
from router.pipeline import Dispatcher
from router.ruleset.active import ActiveRules
from router.settings import Settings
from router.stages import build_stages
from router.stages.capture_work import CaptureSettings, SourceReader
from router.stages.diffuse import TemplateRulesWatch
from router.transport import Transport
from router.transport.embedded import EmbeddedTransport
from router.transport.poller import Pacing
from store.engine import Database

log = logging.getLogger("cairn")


@dataclass
class Runtime:
    """Everything a running Cairn process holds."""

    settings: Settings
    db: Database
    dispatcher: Dispatcher
    transport: Transport
    rules: ActiveRules
    verifiers: dict[str, Verifier] = field(default_factory=dict)
    targets: dict[System, Target] = field(default_factory=dict)
    consumes: bool = True
    lms_clients: dict[str, LmsClient] = field(default_factory=dict)
    """Each configured LMS by name, for reading training progress back."""
    """Whether this process runs the workers (and so the background sweeps)."""


def build_verifiers(settings: Settings) -> dict[str, Verifier]:
    """One verifier per source whose secret is configured; the others stay disabled."""
    verifiers: dict[str, Verifier] = {}
    for name, spec in SOURCES.items():
        secret = _secret(getattr(settings, spec.secret_env.removeprefix("CAIRN_").lower(), None))
        if not secret:
            log.warning("source %r disabled: %s is not set", name, spec.secret_env)
            continue
        verifiers[name] = spec.verifier(secret)
    return verifiers


def build_lms_clients(settings: Settings) -> dict[str, LmsClient]:
    """One client per LMS whose address and token are configured."""
    clients: dict[str, LmsClient] = {}
    if settings.moodle_url and settings.moodle_token is not None:
        clients["moodle"] = MoodleClient(settings.moodle_url, settings.moodle_token)
    if settings.canvas_url and settings.canvas_token is not None:
        clients["canvas"] = CanvasClient(
            settings.canvas_url, settings.canvas_token, account_id=settings.canvas_account_id
        )
    return clients


def lms_target(settings: Settings, clients: Mapping[str, LmsClient]) -> LmsTarget | None:
    """The LMS lessons are assigned in: CAIRN_LMS, or the only one configured."""
    if settings.lms:
        if settings.lms not in clients:
            raise ConfigurationError(f"CAIRN_LMS={settings.lms} but that LMS is not configured")
        return LmsTarget(clients[settings.lms])
    if len(clients) == 1:
        return LmsTarget(next(iter(clients.values())))
    if clients:
        raise ConfigurationError("several LMSs are configured: choose one with CAIRN_LMS")
    return None


def build_targets(
    settings: Settings, lms_clients: Mapping[str, LmsClient] | None = None
) -> dict[System, Target]:
    """One target per outside system whose credentials are configured."""
    targets: dict[System, Target] = {}
    lms = lms_target(settings, lms_clients or {})
    if lms is not None:
        targets[System.LMS] = lms
    github = build_github_target(settings)
    if github is not None:
        targets[System.GITHUB] = github
    jira = build_jira_target(settings)
    if jira is not None:
        targets[System.JIRA] = jira
    for system in System:
        if system not in targets:
            log.info("%s target not configured: lessons for it stay planned", system.value)
    return targets


def build_enrichers(settings: Settings) -> dict[str, Enricher]:
    """One enricher per incident tracker whose API access is configured."""
    enrichers: dict[str, Enricher] = {}
    # An empty token counts as unset, as an empty webhook secret does.
    pagerduty = _secret(settings.pagerduty_api_token)
    if pagerduty:
        from connectors.pagerduty.client import PagerDutyClient

        enrichers["pagerduty"] = PagerDutyClient(pagerduty, base_url=settings.pagerduty_api_url)
    incidentio = _secret(settings.incidentio_api_key)
    if incidentio:
        from connectors.incidentio.client import IncidentIoClient

        enrichers["incidentio"] = IncidentIoClient(incidentio, base_url=settings.incidentio_api_url)
    return enrichers


def capture_settings(settings: Settings) -> CaptureSettings:
    """Which finished work becomes a draft lesson, and who owns it."""
    headings = DEFAULT_HEADINGS
    if settings.capture_headings is not None:
        path = settings.capture_headings
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"CAIRN_CAPTURE_HEADINGS: cannot read {path}") from exc
        headings = {**DEFAULT_HEADINGS, **load_headings(text, str(path))}
    config = CaptureConfig(
        jira_types=frozenset(t.lower() for t in settings.listed(settings.capture_jira_types)),
        jira_labels=frozenset(t.lower() for t in settings.listed(settings.capture_jira_labels)),
        github_labels=frozenset(t.lower() for t in settings.listed(settings.capture_github_labels)),
        github_paths=settings.listed(settings.capture_github_paths),
        notify_author=settings.capture_notify_author,
        headings=headings,
    )
    return CaptureSettings(config, dict(settings.capture_project_teams), settings.public_url)


def build_readers(settings: Settings, targets: Mapping[System, Target]) -> dict[str, SourceReader]:
    """Readers of work sources, through the GitHub and Jira targets' credentials."""
    readers: dict[str, SourceReader] = {}
    github = targets.get(System.GITHUB)
    if isinstance(github, GitHubTarget):
        readers["github"] = GitHubSourceReader(
            github, settings.listed(settings.capture_github_paths)
        )
    jira = targets.get(System.JIRA)
    if isinstance(jira, JiraTarget):
        readers["jira"] = JiraSourceReader(jira.calls)
    return readers


def _secret(value: SecretStr | None) -> str:
    """A configured secret's value; "" when it is unset or empty."""
    return "" if value is None else value.get_secret_value()


def build_runtime(
    settings: Settings,
    *,
    consume: bool = True,
    targets: Mapping[System, Target] | None = None,
    enrichers: Mapping[str, Enricher] | None = None,
    lms_clients: Mapping[str, LmsClient] | None = None,
) -> Runtime:
    """Wire a process: `consume=False` serves the API (and relays) without running handlers.

    `targets` and `enrichers` replace the ones the settings configure (the demo points them at
    contract fakes).
    """
    db = Database(settings.database_url.get_secret_value())
    rules = ActiveRules(settings.rules_path)
    template_repositories = settings.listed(settings.github_template_repositories)
    # A change of the template rules (or of the listed repositories) places lessons.
    rules.watchers.append(TemplateRulesWatch(db, template_repositories))
    lms_clients = build_lms_clients(settings) if lms_clients is None else dict(lms_clients)
    targets = dict(build_targets(settings, lms_clients) if targets is None else targets)
    enrichers = dict(build_enrichers(settings) if enrichers is None else enrichers)
    changes.install()
    outbound.install()
    dispatcher = Dispatcher(
        db,
        instrument(
            build_stages(
                rules,
                targets,
                enrichers=enrichers,
                public_url=settings.public_url,
                reminder_window=settings.reminder_window,
                capture_settings=capture_settings(settings),
                readers=build_readers(settings, targets),
                template_repositories=template_repositories,
            )
        ),
        max_attempts=settings.max_attempts,
        count_attempts=settings.broker_mode,
    )
    pacing = Pacing(
        concurrency=settings.concurrency,
        poll_interval=settings.poll_interval,
        lease_seconds=settings.lease_seconds,
        max_attempts=settings.max_attempts,
        republish_seconds=settings.republish_seconds,
    )
    transport: Transport
    if settings.broker_mode and settings.broker_url is not None:
        url = settings.broker_url.get_secret_value()
        options: dict[str, Any] = {
            "prefix": settings.broker_prefix,
            "delivery_limit": settings.delivery_limit,
            "consume": consume,
        }
        # Each broker's client is an optional extra: import only the one in use.
        if url.startswith(("nats://", "tls://")):
            from router.transport.nats import NatsTransport

            transport = NatsTransport(url, db, dispatcher, pacing, **options)
        else:
            from router.transport.rabbit import RabbitTransport

            transport = RabbitTransport(url, db, dispatcher, pacing, **options)
    else:
        transport = EmbeddedTransport(db, dispatcher, pacing, consume=consume)
    verifiers = build_verifiers(settings)
    return Runtime(
        settings, db, dispatcher, transport, rules, verifiers, targets, consume, lms_clients
    )


def build_github_target(settings: Settings) -> GitHubTarget | None:
    """The GitHub target, or None when no GitHub credentials are configured.

    App auth (`CAIRN_GITHUB_APP_ID`, `…_APP_PRIVATE_KEY`, `…_INSTALLATION_ID`) wins over a
    token, and also turns Check Runs on; half an App configuration is a mistake, not a fallback.
    """
    common = {
        "base_url": settings.github_api_url,
        "own_actor": settings.github_actor,
        "teams": settings.github_teams,
        "seconds_between_requests": settings.github_seconds_between_requests,
        "seconds_between_writes": settings.github_seconds_between_writes,
    }
    key = settings.github_app_private_key
    app_id = settings.github_app_id or None
    private_key = None if key is None else key.get_secret_value() or None
    installation = settings.github_installation_id or None  # empty variables count as unset
    if app_id or private_key or installation:
        if app_id is None or private_key is None or installation is None:
            raise ConfigurationError(
                "GitHub App auth needs CAIRN_GITHUB_APP_ID, CAIRN_GITHUB_APP_PRIVATE_KEY and "
                "CAIRN_GITHUB_INSTALLATION_ID together"
            )
        return GitHubTarget.with_app(app_id, private_key, int(installation), **common)
    if settings.github_token is not None and settings.github_token.get_secret_value():
        return GitHubTarget.with_token(settings.github_token.get_secret_value(), **common)
    return None


def build_jira_target(settings: Settings) -> JiraTarget | None:
    """The Jira target, or None when no Jira credentials are configured (empty counts as unset)."""
    token = settings.jira_api_token.get_secret_value() if settings.jira_api_token else ""
    given = (settings.jira_url or "", settings.jira_email or "", token)
    if not any(given):
        return None
    url, email, _ = given
    if not all(given):
        raise ConfigurationError(
            "Jira needs CAIRN_JIRA_URL, CAIRN_JIRA_EMAIL and CAIRN_JIRA_API_TOKEN together"
        )
    return JiraTarget(
        Credentials(url=url, email=email, token=token),
        account_id=settings.jira_account_id or None,
        team_field=settings.jira_team_field or None,
    )
