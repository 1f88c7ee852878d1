"""The typed registry of inbound connectors: route name → verifier, parser and secret."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from connectors.base import InboundEvent, Parser, Verifier
from connectors.generic import webhook as generic
from connectors.github import capture as github_capture
from connectors.github import webhook as github
from connectors.incidentio import webhook as incidentio
from connectors.jira import capture as jira_capture
from connectors.jira import webhook as jira
from connectors.opsgenie import webhook as opsgenie
from connectors.pagerduty import webhook as pagerduty


def together(*parsers: Callable[[Mapping[str, str], bytes], Sequence[InboundEvent]]) -> Parser:
    """One parser giving what each of `parsers` finds in a delivery, in order."""

    def parse(headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        return [event for parser in parsers for event in parser(headers, body)]

    return parse


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One inbound source: its package, the variable holding its secret, how to verify and parse."""

    name: str
    package: str
    secret_env: str
    verifier: Callable[[str], Verifier]
    parse: Parser


SOURCES: dict[str, SourceSpec] = {
    "generic": SourceSpec(
        name="generic",
        package="connectors.generic",
        secret_env="CAIRN_GENERIC_WEBHOOK_SECRET",  # noqa: S106 (a variable name)
        verifier=generic.GenericVerifier,
        parse=generic.parse,
    ),
    "pagerduty": SourceSpec(
        name="pagerduty",
        package="connectors.pagerduty",
        secret_env="CAIRN_PAGERDUTY_WEBHOOK_SECRET",  # noqa: S106 (a variable name)
        verifier=pagerduty.PagerDutyVerifier,
        parse=pagerduty.parse,
    ),
    "incidentio": SourceSpec(
        name="incidentio",
        package="connectors.incidentio",
        secret_env="CAIRN_INCIDENTIO_WEBHOOK_SECRET",  # noqa: S106 (a variable name)
        verifier=incidentio.IncidentIoVerifier,
        parse=incidentio.parse,
    ),
    "opsgenie": SourceSpec(
        name="opsgenie",
        package="connectors.opsgenie",
        secret_env="CAIRN_OPSGENIE_WEBHOOK_TOKEN",  # noqa: S106 (a variable name)
        verifier=opsgenie.OpsgenieVerifier,
        parse=opsgenie.parse,
    ),
    "github": SourceSpec(
        name="github",
        package="connectors.github",
        secret_env="CAIRN_GITHUB_WEBHOOK_SECRET",  # noqa: S106 (a variable name)
        verifier=github.GitHubVerifier,
        parse=together(github.parse, github_capture.parse),
    ),
    "jira": SourceSpec(
        name="jira",
        package="connectors.jira",
        secret_env="CAIRN_JIRA_WEBHOOK_SECRET",  # noqa: S106 (a variable name)
        verifier=jira.JiraVerifier,
        parse=together(jira.parse, jira_capture.parse),
    ),
}

LMS_PACKAGES: dict[str, str] = {
    "moodle": "connectors.moodle",
    "canvas": "connectors.canvas",
    "xapi": "connectors.xapi",
}
"""Learning systems: reached through their APIs (enrolment, progress, statements), not webhook
sources of work items or incidents; their pushed completions have routes of their own."""
