"""Faults a test arranges on the local GitHub, as the project's client sees them, and reset()."""

from __future__ import annotations

import pytest
import requests

from integrations.github.client import GitHubClient, GitHubError, classify
from integrations.github.conf import GitHubConfig


@pytest.fixture
def repo_token(github, api):
    github.create_repo("acme", "infra", files={"a.tf": b"a\n"})
    return api.token("acme", "infra")


def client_for(github, *, read_timeout: float = 5.0) -> GitHubClient:
    config = GitHubConfig(
        app_id=github.app_id, api_url=github.url, web_url=github.url, private_key_file="", client_id=github.client_id,
        client_secret=github.client_secret, ca_bundle=None, max_attempts=3, stale_after_s=900, retry_base_s=1.0,
        heartbeat_s=30.0, writes_per_minute=80, writes_per_hour=500, timeout=(2.0, read_timeout),
    )  # fmt: skip
    return GitHubClient(config=config)


def test_throttle_answers_429_with_retry_after(github, api, repo_token):
    github.throttle(retry_after=7, path="/repos/acme/infra")
    answer = api("GET", "/repos/acme/infra", token=repo_token)
    assert (answer.status_code, answer.headers["Retry-After"]) == (429, "7")
    error = classify(answer)
    assert (error.reason, error.retryable, error.retry_after_s) == ("rate_limited", True, 7.0)
    assert api("GET", "/repos/acme/infra", token=repo_token).status_code == 200


def test_the_secondary_limit_is_a_403_saying_so_with_retry_after(github, api, repo_token):
    fault = github.secondary_rate_limit(retry_after=60)
    answer = api("GET", "/repos/acme/infra", token=repo_token)
    assert answer.status_code == 403
    assert answer.headers["x-github-request-id"] in answer.json()["message"]
    assert (classify(answer).reason, classify(answer).retry_after_s) == ("secondary_rate_limit", 60.0)
    assert fault.remaining == 0


def test_the_primary_limit_is_a_403_with_nothing_remaining_until_the_reset(github, api, repo_token):
    github.primary_rate_limit(reset_in=120)
    answer = api("GET", "/repos/acme/infra", token=repo_token)
    assert (answer.status_code, answer.headers["x-ratelimit-remaining"]) == (403, "0")
    assert int(answer.headers["x-ratelimit-reset"]) == pytest.approx(github.clock() + 120, abs=2)
    error = classify(answer)
    assert error.reason == "rate_limited"
    assert error.retry_after_s == pytest.approx(121, abs=2)


def test_a_fault_answers_only_matching_requests_and_only_so_many_times(github, api, repo_token):
    fault = github.fail(502, times=2, method="POST", path="/repos/*/git/blobs")
    assert api("GET", "/repos/acme/infra", token=repo_token).status_code == 200
    answers = [api("POST", "/repos/acme/infra/git/blobs", token=repo_token, json={"content": "x"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [502, 502, 201]
    assert classify(answers[0]).reason == "server_error"
    assert (fault.hits, fault.remaining) == (2, 0)
    assert github.count("POST", "/repos/*/git/blobs") == 3


@pytest.mark.parametrize(("status", "reason"), [(401, "unauthorized"), (404, "not_found"), (422, "validation")])
def test_an_error_fault_has_githubs_message(github, api, repo_token, status, reason):
    github.fail(status)
    answer = api("GET", "/repos/acme/infra/git/ref/heads/main", token=repo_token)
    assert answer.status_code == status
    assert classify(answer).reason == reason


def test_a_dropped_connection_is_a_network_error_and_the_next_request_is_served(github, repo_token):
    github.drop_connection(path="/repos/acme/infra")
    client = client_for(github)
    with pytest.raises(GitHubError) as caught:
        client.request("GET", "/repos/acme/infra", token=repo_token)
    assert caught.value.reason == "network"
    assert client.request("GET", "/repos/acme/infra", token=repo_token)["full_name"] == "acme/infra"


def test_a_dropped_connection_after_a_kept_alive_one(github, api, repo_token):
    assert api("GET", "/repos/acme/infra", token=repo_token).status_code == 200
    github.drop_connection()
    with pytest.raises(requests.ConnectionError):
        api("GET", "/repos/acme/infra", token=repo_token)
    assert api("GET", "/repos/acme/infra", token=repo_token).status_code == 200


def test_a_slow_answer_times_the_client_out(github, repo_token):
    github.slow(1.0, path="/repos/acme/infra")
    with pytest.raises(GitHubError) as caught:
        client_for(github, read_timeout=0.2).request("GET", "/repos/acme/infra", token=repo_token)
    assert caught.value.reason == "timeout"
    github.slow(0.2)
    assert client_for(github).request("GET", "/repos/acme/infra", token=repo_token)["archived"] is False


def test_a_concurrent_push_lands_just_before_the_next_ref_update(github, api, repo_token):
    head = github.head("acme", "infra")
    tree = github.tree_sha_at("acme", "infra")
    ours = api("POST", "/repos/acme/infra/git/commits", token=repo_token,
               json={"message": "ours", "tree": tree, "parents": [head]}).json()["sha"]  # fmt: skip
    github.concurrent_push({"theirs.tf": b"theirs\n"})
    answer = api("PATCH", "/repos/acme/infra/git/refs/heads/main", token=repo_token, json={"sha": ours, "force": False})
    assert (answer.status_code, classify(answer).reason) == (422, "not_fast_forward")
    assert github.files("acme", "infra") == {"a.tf": b"a\n", "theirs.tf": b"theirs\n"}
    assert github.commits("acme", "infra")[0].parents == (head,)


def test_reset_restores_the_state_of_construction(github, api, repo_token):
    github.fail(502)
    github.unreachable = True
    github.clock_offset = 10
    github.set_rate_limit(1)
    github.users.clear()
    github.reset()
    assert github.faults == [] and github.request_log == [] and github.token_requests == []
    assert github.unreachable is False and github.clock_offset == 0
    assert github.find_repo("acme", "infra") is None
    assert sorted(github.users) == ["hubot", "octocat"]
    github.create_repo("acme", "infra")
    assert api("GET", "/repos/acme/infra", token=repo_token).status_code == 401  # tokens went with it
    assert api("GET", "/repos/acme/infra", token=api.token("acme", "infra")).headers["x-ratelimit-limit"] == "5000"
