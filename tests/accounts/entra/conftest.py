"""A local Entra on 127.0.0.1 (HTTPS, a test CA, RS256 keys, Graph) and the settings that point at it."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pytest

from accounts.models import User
from core import http
from devtools.local_entra import LocalEntra, LocalUser

TENANT = "7a3f0000-0000-4000-8000-00000000c0de"
OTHER_TENANT = "0b0b0000-0000-4000-8000-0000000000b0"
PERSONAL_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"  # personal Microsoft accounts
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
SECRET = "local-test-secret"
PHOTO = b"\x89PNG\r\n\x1a\n" + b"local-photo" * 10

ALICE = LocalUser(
    oid="aaaaaaaa-0000-4000-8000-000000000001",
    tid=TENANT,
    email="alice@example.com",
    name="Alice Example",
    company_name="Example Corp",
    department="Platform",
    photo=PHOTO,
)
BOB = LocalUser(oid="bbbbbbbb-0000-4000-8000-000000000002", tid=TENANT, email="Bob@Example.com", name="Bob")
# Another tenant asserting an address of example.com, which it does not own.
MALLORY = LocalUser(oid="cccccccc-0000-4000-8000-000000000003", tid=OTHER_TENANT, email="alice@example.com", name="M")
ADMIN = LocalUser(
    oid="dddddddd-0000-4000-8000-000000000004",
    tid=TENANT,
    email="admin@example.com",
    name="Admin",
    roles=["Platform.Admin"],
)
CAROL = LocalUser(oid="eeeeeeee-0000-4000-8000-000000000005", tid=TENANT, email="carol@example.com", name="Carol")
PERSONAL = LocalUser(oid="ffffffff-0000-4000-8000-000000000006", tid=PERSONAL_TENANT, email="p@example.com", name="P")
USERS = [ALICE, BOB, MALLORY, ADMIN, CAROL, PERSONAL]


@pytest.fixture(scope="session")
def entra_server(tmp_path_factory):
    server = LocalEntra(
        cert_dir=tmp_path_factory.mktemp("local-entra"),
        users=USERS,
        tenant_id=TENANT,
        client_id=CLIENT_ID,
        client_secret=SECRET,
        api_audience=f"api://{CLIENT_ID}",
        graph_strict_select=True,  # as Graph: no companyName/department without $select
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def entra(entra_server, settings):
    """Settings pointing at the local Entra, as the environment would set them; the server as constructed."""
    entra_server.reset()
    settings.ENTRA_ENABLED = True
    settings.ENTRA_LOCAL = False
    settings.ENTRA_CLIENT_ID = CLIENT_ID
    settings.ENTRA_TENANT_ID = TENANT
    settings.ENTRA_CLIENT_SECRET = SECRET
    settings.ENTRA_REDIRECT_URI = "http://testserver/auth/callback/"
    settings.ENTRA_AUTHORITY_HOST = entra_server.url
    settings.GRAPH_URL = entra_server.url
    settings.ENTRA_CA_BUNDLE = str(entra_server.ca_path)
    settings.ENTRA_ALLOWED_TENANTS = [TENANT, OTHER_TENANT]
    settings.ENTRA_API_AUDIENCE = f"api://{CLIENT_ID}"
    settings.ENTRA_TENANT_DOMAINS = {TENANT: ["example.com"], OTHER_TENANT: ["other.example"]}
    settings.ENTRA_JIT_CREATE = False
    settings.ENTRA_KEYS_MIN_REFRESH_S = 60
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}
    return entra_server


def legacy_user(email: str, **fields) -> User:
    """A user as migrate_users_to_entra leaves them: flagged, not linked."""
    fields.setdefault("requires_entra_migration", True)
    return User.objects.create(email=email, **fields)


class Browser:
    """The browser's side of the flow: Django's test client for this site, requests for Entra."""

    def __init__(self, client, server: LocalEntra) -> None:
        self.client = client
        self.server = server
        self.http = http.session(ca_bundle=str(server.ca_path))

    def start(self, next_url: str | None = None) -> str:
        response = self.client.get("/auth/login/", {"next": next_url} if next_url else {})
        assert response.status_code == 302, response.content
        return response["Location"]

    def pick(self, auth_uri: str, user: LocalUser) -> dict[str, str]:
        """Choose the user on the local Entra's sign-in page; return the redirect's query."""
        page = self.http.get(auth_uri)
        assert page.status_code == 200, page.text
        assert user.oid in page.text
        parts = urlsplit(auth_uri)
        form = dict(parse_qsl(parts.query))
        response = self.http.post(
            f"{parts.scheme}://{parts.netloc}{parts.path}", data={**form, "user": user.oid}, allow_redirects=False
        )
        assert response.status_code in (302, 303), response.text
        location = urlsplit(response.headers["Location"])
        assert location.path == "/auth/callback/"
        return dict(parse_qsl(location.query))

    def pick_error(self, auth_uri: str) -> dict[str, str]:
        """The authorize request answered at once with an error, as Entra does."""
        response = self.http.get(auth_uri, allow_redirects=False)
        assert response.status_code in (302, 303), response.text
        return dict(parse_qsl(urlsplit(response.headers["Location"]).query))

    def callback(self, query: dict[str, str]):
        return self.client.get("/auth/callback/", query)

    def sign_in(self, user: LocalUser, next_url: str | None = None):
        return self.callback(self.pick(self.start(next_url), user))


@pytest.fixture
def browser(client, entra):
    return Browser(client, entra)


def with_claims(user: LocalUser, **changes) -> LocalUser:
    return replace(user, **changes)
