"""The local Entra's HTML: the sign-in page, error and sign-out pages, form_post, and the browser that reads them."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from devtools.local_entra.users import LocalUser
from devtools.local_server import Response, html_response


@dataclass(frozen=True)
class AuthorizeResponse:
    """Where the sign-in page sends the browser back: a GET (query) or an auto-submitted POST (form_post)."""

    method: str
    redirect_uri: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        return add_query(self.redirect_uri, self.params)


def press_sign_in(http: Any, auth_uri: str, user: LocalUser) -> AuthorizeResponse:
    """Act as the browser on ``http`` (a requests session): open ``auth_uri``, press ``user``'s button.

    Raises AssertionError with the page's text when the server shows an error page.
    """
    page = http.get(auth_uri, allow_redirects=False)
    if page.status_code in (301, 302, 303):
        return _authorize_response_from_location(page.headers["Location"])
    if page.status_code != 200:
        raise AssertionError(f"authorize answered {page.status_code}: {_text_of(page.text)}")

    form = _FormParser()
    form.feed(page.text)
    if user.oid not in form.buttons:
        raise AssertionError(f"the sign-in page offers no button for {user.oid}")
    answer = http.post(_absolute(auth_uri, form.action), data={**form.fields, "user": user.oid}, allow_redirects=False)
    if answer.status_code in (301, 302, 303):
        return _authorize_response_from_location(answer.headers["Location"])
    if answer.status_code == 200 and 'method="post"' in answer.text:
        form_post = _FormParser()
        form_post.feed(answer.text)
        return AuthorizeResponse("POST", form_post.action, dict(form_post.fields))
    raise AssertionError(f"sign-in answered {answer.status_code}: {_text_of(answer.text)}")


def sign_in_page(action: str, params: dict[str, str], users: list[LocalUser]) -> Response:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
        for name, value in params.items()
        if name != "user"
    )
    buttons = "".join(
        f'<button type="submit" name="user" value="{html.escape(user.oid)}">{html.escape(user.name)}<br>'
        f"<small>{html.escape(user.user_principal_name)}</small></button>"
        for user in users
    )
    if not users:
        buttons = "<p>No accounts in this tenant.</p>"
    return html_response(
        200,
        _page(
            "Sign in — local Entra ID",
            "<h1>Sign in — local Entra ID</h1><p>Pick an account</p>"
            f'<form method="post" action="{html.escape(action)}">{hidden}{buttons}</form>'
            '<p class="note">A local stand-in for Microsoft Entra ID: no password, for development and tests only.</p>',
        ),
    )


def error_page(code: int, description: str) -> Response:
    """What Entra shows when it cannot trust the redirect URI with an error."""
    return html_response(
        400,
        _page(
            "Sign in — local Entra ID: error",
            "<h1>Sorry, but we're having trouble signing you in.</h1>"
            f'<p id="error">AADSTS{code}: {html.escape(description)}</p>',
        ),
    )


def signed_out_page(target: str | None) -> Response:
    if target:
        link = f'<p><a id="post-logout" href="{html.escape(target)}">Back to the application</a></p>'
    else:
        link = "<p>You can close this window.</p>"
    return html_response(200, _page("You have signed out", f"<h1>You have signed out of your account</h1>{link}"))


def redirect_to_client(redirect_uri: str, params: dict[str, str], response_mode: str) -> Response:
    """Send the browser back to the client: a redirect with a query, or a form the page posts (form_post)."""
    if response_mode == "form_post":
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in params.items()
        )
        page = _page(
            "Working…",
            f'<form method="post" action="{html.escape(redirect_uri)}">{fields}'
            "<noscript><button type=submit>Continue</button></noscript></form>"
            "<script>document.forms[0].submit()</script>",
        )
        return html_response(200, page)
    return Response(302, headers={"Location": add_query(redirect_uri, params), "Cache-Control": "no-store"})


def add_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _page(title: str, content: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}"
        "main{max-width:440px;margin:8vh auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}"
        "button{display:block;width:100%;text-align:left;margin:8px 0;padding:12px;border:1px solid #ccc;"
        "background:#fff;cursor:pointer;font-size:15px}button:hover{background:#eef}"
        "small{color:#666}.note{color:#666;font-size:13px}</style></head>"
        f"<body><main>{content}</main></body></html>"
    )


class _FormParser(HTMLParser):
    """The hidden fields and the user buttons of a page's form."""

    action = ""
    fields: dict[str, str]
    buttons: list[str]

    def __init__(self) -> None:
        super().__init__()
        self.fields, self.buttons = {}, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = a.get("action", "")
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "button" and a.get("name") == "user":
            self.buttons.append(a.get("value", ""))


def _absolute(base: str, reference: str) -> str:
    parts = urlsplit(base)
    return reference if "://" in reference else f"{parts.scheme}://{parts.netloc}{reference}"


def _authorize_response_from_location(location: str) -> AuthorizeResponse:
    parts = urlsplit(location)
    redirect_uri = location.split("?", 1)[0]
    return AuthorizeResponse("GET", redirect_uri, dict(parse_qsl(parts.query, keep_blank_values=True)))


def _text_of(page: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).strip()[:500]
