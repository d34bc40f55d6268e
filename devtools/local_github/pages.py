"""The local GitHub's authorization page, and the browser that presses its buttons for tests."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from devtools.local_server import Response, html_response


@dataclass(frozen=True)
class Callback:
    """Where GitHub sends the browser back: ``redirect_uri`` with ``params`` (code and state, or an error)."""

    redirect_uri: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        return add_query(self.redirect_uri, self.params)


def authorize_page(action: str, params: dict[str, str], users: list[tuple[str, str]], app_name: str) -> Response:
    """One form per user (``(login, name)``) posting back to ``action``, and a Cancel that denies."""
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
    )
    buttons = (
        "".join(
            f'<form method="post" action="{html.escape(action)}">{hidden}'
            f'<button type="submit" name="login" value="{html.escape(login)}">Authorize as {html.escape(name)}'
            f"<br><small>@{html.escape(login)}</small></button></form>"
            for login, name in users
        )
        or "<p>No test users.</p>"
    )
    deny = (
        f'<form method="post" action="{html.escape(action)}">{hidden}'
        '<button type="submit" name="deny" value="1" class="deny">Cancel</button></form>'
    )
    return html_response(200, _page(
        f"Authorize {app_name}",
        f"<h1>Authorize {html.escape(app_name)}</h1><p>Pick a test user</p>{buttons}{deny}"
        '<p class="note">A local stand-in for GitHub: no password, for development and tests only.</p>',
    ))  # fmt: skip


def error_page(status: int, message: str) -> Response:
    return html_response(
        status, _page("Error — local GitHub", f'<h1>Error</h1><p id="error">{html.escape(message)}</p>')
    )


def redirect(url: str, params: dict[str, str]) -> Response:
    return Response(302, headers={"Location": add_query(url, params), "Cache-Control": "no-store"})


def add_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params) if params else url


def press(http: Any, auth_uri: str, login: str | None) -> Callback:
    """Act as the browser on ``http`` (a requests session): open ``auth_uri`` and authorize as ``login``.

    ``login=None`` presses Cancel. Raises AssertionError with the page's text when GitHub shows an error.
    """
    page = http.get(auth_uri, allow_redirects=False)
    if page.status_code in (301, 302, 303):
        return _callback(page.headers["Location"])
    if page.status_code != 200:
        raise AssertionError(f"authorize answered {page.status_code}: {_text_of(page.text)}")
    parser = _FormParser()
    parser.feed(page.text)
    choice = {"deny": "1"} if login is None else {"login": login}
    form = next((f for f in parser.forms if f["button"] == next(iter(choice.items()))), None)
    if form is None:
        raise AssertionError(f"the authorization page offers no button for {login or 'Cancel'}")
    parts = urlsplit(auth_uri)
    action = form["action"] if "://" in form["action"] else f"{parts.scheme}://{parts.netloc}{form['action']}"
    answer = http.post(action, data={**form["fields"], **choice}, allow_redirects=False)
    if answer.status_code not in (301, 302, 303):
        raise AssertionError(f"authorizing answered {answer.status_code}: {_text_of(answer.text)}")
    return _callback(answer.headers["Location"])


def _callback(location: str) -> Callback:
    return Callback(location.split("?", 1)[0], dict(parse_qsl(urlsplit(location).query, keep_blank_values=True)))


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;background:#f6f8fa;margin:0}"
        "main{max-width:440px;margin:8vh auto;background:#fff;padding:32px;border:1px solid #d0d7de;border-radius:6px}"
        "button{display:block;width:100%;text-align:left;margin:8px 0;padding:12px;border:1px solid #d0d7de;"
        "border-radius:6px;background:#fff;cursor:pointer;font-size:15px}button:hover{background:#f3f4f6}"
        "button.deny{text-align:center}small{color:#57606a}.note{color:#57606a;font-size:13px}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


class _FormParser(HTMLParser):
    """Each form's action, hidden fields and button (``(name, value)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": {}, "button": None})
        elif self.forms and tag == "input" and a.get("type") == "hidden":
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")
        elif self.forms and tag == "button":
            self.forms[-1]["button"] = (a.get("name", ""), a.get("value", ""))


def _text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()[:500]
