"""The template writer and the fake's repository API, through PyGithub."""

from collections.abc import Iterator

import pytest
from github import Auth, Github
from github.GithubException import GithubException

from connectors.github import section, template
from connectors.github.fake import FakeGitHub
from connectors.github.target import GitHubTarget
from connectors.retrying import RetryPolicy
from connectors.target import EmbedEntry
from core.lesson import Mandate
from core.placement import EmbeddingForm

REPO = "acme/web"
FOLDER = ".github/PULL_REQUEST_TEMPLATE"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(actor="cairn-bot").running() as fake:
        fake.contents[(REPO, f"{FOLDER}/feature.md")] = "## Feature\n"
        fake.contents[(REPO, f"{FOLDER}/bug.md")] = "## Bug\n"
        yield fake


def target(github: FakeGitHub) -> GitHubTarget:
    return GitHubTarget.with_token(
        "ghp_fake",
        base_url=github.url,
        policy=RetryPolicy(attempts=2, base_wait=0.01, max_wait=1),
        seconds_between_requests=0,
        seconds_between_writes=0,
    )


def entry(placement_id: str, text: str) -> EmbedEntry:
    return EmbedEntry(
        placement_id=placement_id,
        lesson_id=placement_id,
        lesson_version=1,
        title=text,
        text=text,
        rule_id="templates/in-template",
        mandate=Mandate.INVITED,
        form=EmbeddingForm.GITHUB_PR_TEMPLATE,
    )


def test_the_first_template_of_the_folder_is_edited_through_one_pull_request(
    github: FakeGitHub,
) -> None:
    result = target(github).embed(template.work_item(REPO), [entry("pl_a", "Name the flag")])
    assert result.writes == 3  # the branch, the file, the pull request
    assert result.handles == {"pl_a": section.handle(entry("pl_a", "Name the flag"))}
    on_branch = github.files(REPO, template.BRANCH)
    assert on_branch[f"{FOLDER}/bug.md"].startswith("## Bug\n")
    assert section.marker_id("pl_a") in on_branch[f"{FOLDER}/bug.md"]
    assert on_branch[f"{FOLDER}/feature.md"] == "## Feature\n"
    assert github.contents[(REPO, f"{FOLDER}/bug.md")] == "## Bug\n"
    (pull,) = [p for p in github.pulls.values() if p.head_ref == template.BRANCH]
    assert (pull.state, pull.base) == ("open", "main")
    again = target(github).embed(template.work_item(REPO), [entry("pl_a", "Name the flag")])
    assert again.writes == 0


def test_the_fake_refuses_what_github_refuses(github: FakeGitHub) -> None:
    client = Github(
        auth=Auth.Token("ghp_fake"),
        base_url=github.url,
        retry=None,
        seconds_between_requests=0,
        seconds_between_writes=0,
    )
    repo = client.get_repo(REPO)
    head = repo.get_git_ref("heads/main").object.sha
    repo.create_git_ref("refs/heads/topic-a", head)
    with pytest.raises(GithubException) as exists:
        repo.create_git_ref("refs/heads/topic-a", head)
    assert exists.value.status == 422
    path = f"{FOLDER}/bug.md"
    with pytest.raises(GithubException) as unsupplied:
        repo.create_file(path, "m", "x", branch="topic-a")
    assert unsupplied.value.status == 422
    with pytest.raises(GithubException) as stale:
        repo.update_file(path, "m", "x", "0" * 40, branch="topic-a")
    assert stale.value.status == 409
    repo.create_pull(base="main", head="topic-a", title="One")
    with pytest.raises(GithubException) as twice:
        repo.create_pull(base="main", head="topic-a", title="Two")
    assert twice.value.status == 422
    with pytest.raises(GithubException) as unknown:
        repo.get_git_ref("heads/nowhere").object  # noqa: B018 (reading fetches)
    assert unknown.value.status == 404
