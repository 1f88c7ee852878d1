"""Builds the GitHub target from settings: a token, or a GitHub App installation."""

from connectors.github.target import GitHubTarget
from core.errors import ConfigurationError
from router.settings import Settings


def build_github_target(settings: Settings) -> GitHubTarget | None:
    """The GitHub target, or None when no GitHub credentials are configured.

    App auth (`CAIRN_GITHUB_APP_ID`, `…_APP_PRIVATE_KEY`, `…_INSTALLATION_ID`) wins over a
    token, and also turns Check Runs on; half an App configuration is a mistake, not a fallback.
    """
    common = {
        "base_url": settings.github_api_url,
        "own_actor": settings.github_actor,
        "teams": settings.github_teams,
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
