"""The local GitHub's repositories: git's own object ids, trees with nested paths, refs, empty and archived ones."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess

import pytest

from integrations.github.gitobjects import folder_tree_sha

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs the git binary")

FILES = {
    "main.tf": b'resource "x" "y" {}\n',
    "modules/net/vnet.tf": b"# vnet\n",
    "modules/net.tf": b"# sorts before the net/ folder? git sorts folders as if named net/\n",
    "modules-a.tf": b"a\n",
    "README.md": "Unicode: \u00e9\u00e8\n".encode(),
}
DATE = "2024-05-01T12:00:00Z"
AUTHOR = {"name": "Ada Lovelace", "email": "ada@example.com", "date": DATE}


def git(checkout, *args: str, env: dict | None = None) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), *args], capture_output=True, check=True, env={**os.environ, **(env or {})}
    )
    return result.stdout.decode().strip()


@pytest.fixture
def checkout(tmp_path):
    """A real git checkout holding FILES, staged."""
    for path, content in FILES.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(content)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    return tmp_path


def test_blobs_and_trees_have_gits_ids(github, api, checkout):
    github.create_repo("acme", "infra", files=FILES)
    token = api.token("acme", "infra")
    root = git(checkout, "write-tree")
    assert github.tree_sha_at("acme", "infra") == root
    assert github.tree_sha_at("acme", "infra", folder="modules") == git(checkout, "rev-parse", f"{root}:modules")

    blob = api("POST", "/repos/acme/infra/git/blobs", token=token,
               json={"content": base64.b64encode(FILES["main.tf"]).decode(), "encoding": "base64"})  # fmt: skip
    assert blob.status_code == 201
    assert blob.json()["sha"] == git(checkout, "hash-object", "main.tf")

    # Nested paths make the intermediate trees, as GitHub does.
    entries = [{"path": p, "mode": "100644", "type": "blob", "content": c.decode()} for p, c in FILES.items()]
    tree = api("POST", "/repos/acme/infra/git/trees", token=token, json={"tree": entries})
    assert tree.status_code == 201
    assert tree.json()["sha"] == git(checkout, "write-tree") == folder_tree_sha(FILES)

    listed = api("GET", f"/repos/acme/infra/git/trees/{tree.json()['sha']}?recursive=1", token=token).json()
    assert listed["truncated"] is False
    ls_tree = git(checkout, "ls-tree", "-r", "-t", git(checkout, "write-tree")).splitlines()
    assert [f"{e['mode']} {e['type']} {e['sha']}\t{e['path']}" for e in listed["tree"]] == ls_tree
    top = api("GET", f"/repos/acme/infra/git/trees/{tree.json()['sha']}", token=token).json()["tree"]
    assert [e["path"] for e in top] == ["README.md", "main.tf", "modules-a.tf", "modules"]
    assert next(e for e in top if e["path"] == "modules")["mode"] == "040000"


def test_commits_have_gits_ids(github, api, checkout):
    github.create_repo("acme", "infra", files=FILES)
    token = api.token("acme", "infra")
    tree = git(checkout, "write-tree")
    dates = {"GIT_AUTHOR_DATE": DATE, "GIT_COMMITTER_DATE": DATE}
    names = {"GIT_AUTHOR_NAME": "Ada Lovelace", "GIT_AUTHOR_EMAIL": "ada@example.com"}
    names |= {"GIT_COMMITTER_NAME": "Ada Lovelace", "GIT_COMMITTER_EMAIL": "ada@example.com"}
    root = git(checkout, "commit-tree", tree, "-m", "first", env=dates | names)
    child = git(checkout, "commit-tree", tree, "-p", root, "-m", "second", env=dates | names)

    body = {"tree": tree, "author": AUTHOR, "committer": AUTHOR}
    first = api(
        "POST", "/repos/acme/infra/git/commits", token=token, json={**body, "message": "first\n", "parents": []}
    )
    assert first.status_code == 201
    assert first.json()["sha"] == root
    second = api("POST", "/repos/acme/infra/git/commits", token=token,
                 json={**body, "message": "second\n", "parents": [root]})  # fmt: skip
    assert second.json()["sha"] == child

    read = api("GET", f"/repos/acme/infra/git/commits/{child}", token=token).json()
    assert read["tree"]["sha"] == tree
    assert [p["sha"] for p in read["parents"]] == [root]
    assert read["message"] == "second\n"
    assert read["author"] == AUTHOR


def test_a_tree_on_a_base_tree_changes_only_its_paths(github, api):
    github.create_repo("acme", "infra", files=FILES)
    token = api.token("acme", "infra")
    base = github.tree_sha_at("acme", "infra")
    entries = [
        {"path": "modules/net/vnet.tf", "mode": "100644", "type": "blob", "content": "# changed\n"},
        {"path": "modules/dns/zone.tf", "mode": "100644", "type": "blob", "content": "# new folder\n"},
        {"path": "modules-a.tf", "mode": "100644", "type": "blob", "sha": None},
    ]
    tree = api("POST", "/repos/acme/infra/git/trees", token=token, json={"tree": entries, "base_tree": base}).json()
    expected = {**FILES, "modules/net/vnet.tf": b"# changed\n", "modules/dns/zone.tf": b"# new folder\n"}
    del expected["modules-a.tf"]
    assert tree["sha"] == folder_tree_sha(expected)

    # A folder grafted whole (mode spelled 040000, hashed 40000), and the last file of a folder deleted.
    subtree = github.tree_sha_at("acme", "infra", folder="modules")
    entries = [
        {"path": "copy/of/modules", "mode": "040000", "type": "tree", "sha": subtree},
        {"path": "modules/net/vnet.tf", "mode": "100644", "type": "blob", "sha": None},
    ]
    tree = api("POST", "/repos/acme/infra/git/trees", token=token, json={"tree": entries, "base_tree": base}).json()
    expected = {path: content for path, content in FILES.items() if path != "modules/net/vnet.tf"}
    expected |= {f"copy/of/{path}": content for path, content in FILES.items() if path.startswith("modules/")}
    assert tree["sha"] == folder_tree_sha(expected)


@pytest.mark.parametrize(
    "entry",
    [
        {"path": "../escape.tf", "mode": "100644", "type": "blob", "content": "x"},
        {"path": "a//b.tf", "mode": "100644", "type": "blob", "content": "x"},
        {"path": ".git/config", "mode": "100644", "type": "blob", "content": "x"},
        {"path": "a.tf", "mode": "100644", "type": "blob", "sha": "0" * 40},
        {"path": "a.tf", "mode": "100600", "type": "blob", "content": "x"},
        {"path": "a.tf", "mode": "100644", "type": "blob"},
    ],
)
def test_a_bad_tree_entry_is_refused_with_422(github, api, entry):
    github.create_repo("acme", "infra")
    answer = api("POST", "/repos/acme/infra/git/trees", token=api.token("acme", "infra"), json={"tree": [entry]})
    assert answer.status_code == 422
    assert answer.json()["message"]


def test_a_ref_moves_fast_forward_only(github, api):
    github.create_repo("acme", "infra", files={"a.tf": b"a\n"})
    token = api.token("acme", "infra")
    head = github.head("acme", "infra", "main")
    ref = api("GET", "/repos/acme/infra/git/ref/heads/main", token=token).json()
    assert ref == {**ref, "ref": "refs/heads/main", "object": {**ref["object"], "sha": head, "type": "commit"}}
    tree = github.tree_sha_at("acme", "infra")
    ours = api("POST", "/repos/acme/infra/git/commits", token=token,
               json={"message": "ours", "tree": tree, "parents": [head]}).json()["sha"]  # fmt: skip
    theirs = github.push("acme", "infra", "main", {"b.tf": b"b\n"})

    refused = api("PATCH", "/repos/acme/infra/git/refs/heads/main", token=token, json={"sha": ours, "force": False})
    assert refused.status_code == 422
    assert refused.json()["message"] == "Update is not a fast forward"
    assert github.head("acme", "infra", "main") == theirs

    forced = api("PATCH", "/repos/acme/infra/git/refs/heads/main", token=token, json={"sha": ours, "force": True})
    assert forced.status_code == 200
    assert github.head("acme", "infra", "main") == ours
    assert [c.sha for c in github.commits("acme", "infra", "main")] == [ours, head]


def test_refs_are_created_once_and_a_missing_branch_is_404(github, api):
    github.create_repo("acme", "infra")
    token = api.token("acme", "infra")
    head = github.head("acme", "infra")
    missing = api("GET", "/repos/acme/infra/git/ref/heads/feature/x", token=token)
    assert (missing.status_code, missing.json()["message"]) == (404, "Not Found")
    body = {"ref": "refs/heads/feature/x", "sha": head}
    assert api("POST", "/repos/acme/infra/git/refs", token=token, json=body).status_code == 201
    assert github.head("acme", "infra", "feature/x") == head
    again = api("POST", "/repos/acme/infra/git/refs", token=token, json=body)
    assert (again.status_code, again.json()["message"]) == (422, "Reference already exists")
    assert api("GET", "/repos/acme/infra/git/ref/heads/feature/x", token=token).json()["object"]["sha"] == head


def test_an_empty_repository_answers_409_until_the_contents_api_makes_its_first_commit(github, api):
    github.create_repo("acme", "infra", empty=True)
    token = api.token("acme", "infra")
    assert api("GET", "/repos/acme/infra", token=token).json()["default_branch"] == "main"
    for method, path, body in [
        ("GET", "/git/ref/heads/main", None),
        ("POST", "/git/refs", {"ref": "refs/heads/main", "sha": "0" * 40}),
        ("GET", f"/git/commits/{'0' * 40}", None),
        ("POST", "/git/trees", {"tree": []}),
        ("POST", "/git/blobs", {"content": "x"}),
    ]:
        answer = api(method, f"/repos/acme/infra{path}", token=token, json=body)
        assert (answer.status_code, answer.json()["message"]) == (409, "Git Repository is empty."), path

    put = api("PUT", "/repos/acme/infra/contents/infra/main.tf", token=token,
              json={"message": "First", "content": base64.b64encode(b"# main\n").decode()})  # fmt: skip
    assert put.status_code == 201
    assert put.json()["commit"]["sha"] == github.head("acme", "infra", "main")
    assert put.json()["content"]["path"] == "infra/main.tf"
    assert github.files("acme", "infra", "main") == {"infra/main.tf": b"# main\n"}
    assert api("GET", "/repos/acme/infra/git/ref/heads/main", token=token).status_code == 200

    # Updating a file needs the sha of the one it replaces.
    update = {"message": "Again", "content": base64.b64encode(b"# v2\n").decode()}
    assert api("PUT", "/repos/acme/infra/contents/infra/main.tf", token=token, json=update).status_code == 422
    update["sha"] = put.json()["content"]["sha"]
    assert api("PUT", "/repos/acme/infra/contents/infra/main.tf", token=token, json=update).status_code == 200
    assert github.files("acme", "infra")["infra/main.tf"] == b"# v2\n"


def test_the_contents_api_puts_the_first_commit_on_the_branch_asked_for(github, api):
    github.create_repo("acme", "infra", empty=True)
    token = api.token("acme", "infra")
    api("PUT", "/repos/acme/infra/contents/a.tf", token=token,
        json={"message": "First", "content": base64.b64encode(b"a").decode(), "branch": "platform"})  # fmt: skip
    assert github.files("acme", "infra", "platform") == {"a.tf": b"a"}
    assert api("GET", "/repos/acme/infra", token=token).json()["default_branch"] == "platform"


def test_an_archived_repository_is_read_only(github, api):
    github.create_repo("acme", "infra", archived=True)
    token = api.token("acme", "infra")
    assert api("GET", "/repos/acme/infra", token=token).json()["archived"] is True
    assert api("GET", "/repos/acme/infra/git/ref/heads/main", token=token).status_code == 200
    answer = api("POST", "/repos/acme/infra/git/blobs", token=token, json={"content": "x"})
    assert (answer.status_code, answer.json()["message"]) == (403, "Repository was archived so is read-only.")
    assert github.write_count() == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/git/commits", {"message": "m", "tree": "x", "parents": [["nested"]]}),
        ("POST", "/git/refs", {"ref": "refs/heads/x", "sha": ["nested"]}),
        ("PATCH", "/git/refs/heads/main", {"sha": {"a": 1}}),
        ("POST", "/git/trees", {"tree": [{"path": "a", "mode": "100644", "type": "blob", "sha": ["x"]}]}),
        ("POST", "/git/trees", {"tree": [], "base_tree": ["x"]}),
        ("POST", "/git/trees", {"tree": "not a list"}),
        ("POST", "/git/blobs", {"content": "%%%", "encoding": "base64"}),
        ("PUT", "/contents/a.tf", {"message": "m"}),
    ],
)
def test_malformed_bodies_are_refused_not_crashed_on(github, api, method, path, body):
    github.create_repo("acme", "infra")
    answer = api(method, f"/repos/acme/infra{path}", token=api.token("acme", "infra"), json=body)
    assert answer.status_code == 422, answer.text
    broken = api(method, f"/repos/acme/infra{path}", token=api.token("acme", "infra"), data=b"{not json")
    assert broken.status_code == 400
