"""The project's GitHub client and sync against the local GitHub: what they send is what it expects."""

from __future__ import annotations

import pytest

from integrations.github import connect
from integrations.github.auth import forget_tokens
from integrations.github.client import GitHubClient
from integrations.github.conf import GitHubConfig
from integrations.github.gitobjects import folder_tree_sha
from integrations.github.sync import sync_folder
from tests.devtools.conftest import CALLBACK, OCTOCAT

FILES = {"main.tf": b"# main\n", "modules/net/vnet.tf": b"# vnet\n", "variables.tf": b"# vars\n"}


@pytest.fixture
def client(github, tmp_path):
    forget_tokens()
    config = GitHubConfig(
        app_id=github.app_id, api_url=github.url, web_url=github.url,
        private_key_file=str(github.write_private_key(tmp_path / "app-key.pem")), client_id=github.client_id,
        client_secret=github.client_secret, ca_bundle=None, max_attempts=3, stale_after_s=900, retry_base_s=1.0,
        heartbeat_s=30.0, writes_per_minute=80, writes_per_hour=500, timeout=(2.0, 5.0),
    )  # fmt: skip
    yield GitHubClient(config=config)
    forget_tokens()


def sync(client, files=FILES, *, name="infra", branch="main", folder="projects/web"):
    return sync_folder(client=client, owner="acme", name=name, branch=branch, folder=folder, files=files,
                       message="Sync web")  # fmt: skip


def test_a_sync_into_an_empty_repository_then_an_unchanged_one_writes_nothing(github, client):
    github.create_repo("acme", "infra", empty=True)
    outcome = sync(client)
    assert outcome.status == "succeeded"
    assert github.files("acme", "infra", "main") == {f"projects/web/{p}": c for p, c in FILES.items()}
    assert github.tree_sha_at("acme", "infra", "main", "projects/web") == folder_tree_sha(FILES) == outcome.tree_sha
    assert github.head("acme", "infra", "main") == outcome.commit_sha
    (asked,) = github.token_requests
    assert (asked.repositories, asked.permissions) == (["infra"], {"contents": "write"})
    assert {r.auth for r in github.request_log} == {"jwt", "installation"}

    writes = github.write_count()
    assert sync(client).status == "unchanged"
    assert github.write_count() == writes


def test_a_sync_keeps_what_is_outside_its_folder_and_rebuilds_on_a_concurrent_push(github, client):
    github.create_repo("acme", "infra", files={"README.md": b"# infra\n", "projects/web/stale.tf": b"old\n"})
    github.concurrent_push({"projects/api/main.tf": b"# theirs\n"})
    outcome = sync(client)
    assert outcome.status == "succeeded"
    assert github.files("acme", "infra") == {
        "README.md": b"# infra\n",
        "projects/api/main.tf": b"# theirs\n",
        **{f"projects/web/{p}": c for p, c in FILES.items()},
    }
    assert github.count("PATCH", "/repos/acme/infra/git/refs/heads/main") == 2
    ours, theirs, first = github.commits("acme", "infra")
    assert (ours.sha, ours.parents, theirs.parents) == (outcome.commit_sha, (theirs.sha,), (first.sha,))
    assert ours.author.name == f"{github.app_slug}[bot]"


def test_a_sync_to_a_new_branch_starts_from_the_default_branch(github, client):
    github.create_repo("acme", "infra", files={"README.md": b"# infra\n"})
    sync(client, branch="platform/web")
    assert github.files("acme", "infra", "main") == {"README.md": b"# infra\n"}
    assert set(github.files("acme", "infra", "platform/web")) == {"README.md", *(f"projects/web/{p}" for p in FILES)}


def test_a_revoked_installation_token_is_renewed_once(github, client):
    github.create_repo("acme", "infra")
    sync(client)
    github.revoke_installation_tokens()
    sync(client, {"main.tf": b"# v2\n"})
    assert len(github.token_requests) == 2
    assert github.files("acme", "infra")["projects/web/main.tf"] == b"# v2\n"


def test_connects_revocation_reaches_the_local_github(github, client, api):
    code = github.sign_in(
        f"{github.url}/login/oauth/authorize?client_id={github.client_id}&redirect_uri={CALLBACK}&state=s", OCTOCAT
    ).params["code"]
    token = client.request("POST", f"{github.url}/login/oauth/access_token", token="", accept="application/json",
                           data={"client_id": github.client_id, "client_secret": github.client_secret,
                                 "code": code, "redirect_uri": CALLBACK})["access_token"]  # fmt: skip
    assert client.request("GET", "/user", token=token, scheme="Bearer")["login"] == "octocat"
    connect.revoke(client, token)
    assert github.revoked_tokens == [token]
