"""Builds the Jira target from settings (URL, account e-mail and API token together)."""

from connectors.jira.client import Credentials
from connectors.jira.target import JiraTarget
from core.errors import ConfigurationError
from router.settings import Settings


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
