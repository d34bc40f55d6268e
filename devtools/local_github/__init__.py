"""A local stand-in for GitHub: the REST API the project's client uses, with real repositories and git's object ids.

For tests, and for trying the sync on a machine without GitHub. One server
(plain HTTP by default, HTTPS with ``cert_dir``) answers both the web flow and the API::

    with LocalGitHub(users=[octocat]) as github:
        github.create_repo("acme", "infra", files={"README.md": b"# infra\\n"})
        github.write_private_key(tmp_path / "app-key.pem")  # for GITHUB_APP_PRIVATE_KEY_FILE
        ...  # settings: GITHUB_API_URL = GITHUB_WEB_URL = github.url
        assert github.files("acme", "infra", "main")["infra/main.tf"] == b"..."

It follows GitHub where the project could tell the difference:

- Blob, tree and commit ids are git's own (``objects``): a tree built through the
  API has the id ``git write-tree`` gives the same files.
- Every request but the browser's authorize page needs ``X-GitHub-Api-Version:
  2022-11-28`` (400 without; GitHub itself would default it), so a test proves the
  client sends it. Every answer carries ``x-github-request-id`` and the
  ``x-ratelimit-*`` figures of its credential's budget (``set_rate_limit``).
- The App's JWT is checked as GitHub does (RS256 with the App's key, ``iss``, at most
  10 minutes between ``iat`` and ``exp``, 60 s of drift); installation tokens last
  an hour and open only the repositories and permissions they were asked for.
  A token used on another repository answers 401 (GitHub: 404).
- An empty repository answers 409 on every Git Data endpoint; the Contents API
  makes its first commit, and that branch becomes the default. An archived one
  refuses writes with 403. Ref updates are fast-forward only unless ``force``.
- The token endpoint answers errors with 200 and an ``error`` field, form-encoded
  unless the client accepts JSON. User tokens do not expire.

Tests arrange repositories (``create_repo``, ``repo(...).archived = True``, ``push``),
read them back (``files``, ``head``, ``commits``, ``tree_sha_at``), read what the
server saw (``request_log``, ``count``, ``write_count``, ``token_requests``,
``revoked_tokens``), play the browser (``sign_in``, ``deny``), age or revoke
tokens (``clock_offset``, ``expire_installation_tokens``, ``revoke_installation_tokens``)
and arrange faults (``fail``, ``throttle``, ``secondary_rate_limit``,
``primary_rate_limit``, ``drop_connection``, ``slow``, ``concurrent_push``: see
``faults``). ``reset()`` undoes all of it, back to the users and App key of construction.

The modules: ``server`` (LocalGitHub: state, reset, routing, headers), ``oauth``
(the web flow) and ``pages``, ``app_auth`` (the App's key, JWT, installations),
``git_data`` (the repository endpoints), ``repos`` (repository state and its test
API), ``objects`` (git's objects), ``faults``, ``request``.
"""

from devtools.local_github.faults import Fault
from devtools.local_github.oauth import GitHubUser
from devtools.local_github.pages import Callback
from devtools.local_github.server import LocalGitHub, LoggedRequest

__all__ = ["Callback", "Fault", "GitHubUser", "LocalGitHub", "LoggedRequest"]
