"""After sign-in, renewal and sign-out, no token is anywhere in plain text.

Every row of every table is read (binary columns too), the session store is
decoded, and the captured logs are searched for every token, refresh token
and authorization code the local Entra issued.
"""

from __future__ import annotations

import logging

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.sessions.models import Session
from django.db import connection

from accounts.models import User
from tests.accounts.entra.conftest import ALICE, legacy_user

pytestmark = pytest.mark.django_db


def everything_stored() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, (bytes, memoryview)):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    for session in Session.objects.all():
        chunks.append(repr(session.get_decoded()))
    return "\n".join(chunks)


def test_no_token_in_plain_text_anywhere(browser, entra, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.DEBUG)
    alice = legacy_user("alice@example.com")
    issued_before = len(entra.issued)
    with django_capture_on_commit_callbacks(execute=True):
        assert browser.sign_in(ALICE).status_code == 302
    User.objects.filter(pk=alice.pk).update(azure_token_expires_at="2000-01-01T00:00:00Z")
    assert browser.client.get("/account/").status_code == 200  # renewal through the refresh token
    stored_while_signed_in = everything_stored()
    assert browser.client.post("/auth/logout/").status_code == 302

    issued = entra.issued[issued_before:]
    assert len(issued) >= 6  # code, id/access/refresh tokens, then renewed ones
    stored = stored_while_signed_in + everything_stored()
    for secret in issued:
        assert secret not in stored
        assert secret not in caplog.text
    # The decoy: a token that is stored must be found, or this test proves nothing.
    LogEntry.objects.create(user=alice, action_flag=ADDITION, object_repr="decoy", change_message=issued[-1])
    assert issued[-1] in everything_stored()
