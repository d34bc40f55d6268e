"""One request as the endpoints see it, the credential it carries, and the errors they answer with."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import Any
from urllib.parse import parse_qsl

DOCS = "https://docs.github.com/rest"

ERROR_MESSAGES = {
    400: "Problems parsing JSON",
    401: "Bad credentials",
    403: "Resource not accessible by integration",
    404: "Not Found",
    409: "Conflict",
    422: "Validation Failed",
    502: "Server Error",
}


class ApiError(Exception):
    """An answer of ``{"message": …}`` with ``status``, as GitHub's REST API gives."""

    def __init__(self, status: int, message: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message or ERROR_MESSAGES.get(status, "Error")
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"message": self.message, "documentation_url": DOCS, "status": str(self.status)}


@dataclass(frozen=True)
class Auth:
    """The ``Authorization`` header: ``kind`` is none, jwt, installation, user, basic or other."""

    kind: str
    credential: str = ""
    password: str = ""  # basic only

    @classmethod
    def parse(cls, header: str | None) -> Auth:
        if not header:
            return cls("none")
        scheme, _, value = header.strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return cls("other", value)
            return cls("basic", user, password)
        if scheme.lower() not in ("bearer", "token"):
            return cls("other", value)
        if value.startswith("ghs_"):
            return cls("installation", value)
        if value.startswith("ghu_"):
            return cls("user", value)
        if value.count(".") == 2 and scheme.lower() == "bearer":
            return cls("jwt", value)
        return cls("other", value)


@dataclass
class Request:
    method: str
    path: str  # without the query, percent-decoded
    query: dict[str, str]
    headers: HTTPMessage
    body: bytes
    auth: Auth

    def json(self) -> dict[str, Any]:
        """The body as a JSON object (an empty body is ``{}``); 400 otherwise, as GitHub answers."""
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Problems parsing JSON") from exc
        if not isinstance(value, dict):
            raise ApiError(400, "Problems parsing JSON")
        return value

    def params(self) -> dict[str, str]:
        """Query, form and JSON parameters together, as the OAuth endpoints take any of them."""
        params = dict(self.query)
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            params.update({key: str(value) for key, value in self.json().items()})
        elif self.body:
            params.update(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
        return params

    def wants_json(self) -> bool:
        return "json" in (self.headers.get("Accept") or "")
