"""Helpers for admin tests: a signed-in session, the rows a change list shows, the form a browser sends back."""

from __future__ import annotations

import time

from django.contrib.messages import get_messages


def sign_in(client, user) -> None:
    """Sign ``user`` in as an Entra sign-in leaves them, past the middleware that extends sessions.

    So the next requests do not save the session again (tests count their queries).
    """
    from core.middleware import REFRESHED_AT

    client.force_login(user)
    session = client.session
    session[REFRESHED_AT] = int(time.time())
    session.save()


def shown(response) -> list:
    """The objects a change list page shows, in its order."""
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def form_data(response) -> dict:
    """The POST a browser would send back from an admin change page, unchanged."""
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    data = {}
    for form in forms:
        for field in form:
            value = field.value()
            if value is None or value is False:
                continue
            data[field.html_name] = "on" if value is True else value
    return data


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]
