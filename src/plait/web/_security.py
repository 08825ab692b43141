"""The middleware every response passes through: the token check on entry, security headers.

:class:`Guard` (pure ASGI, so server-sent event streams pass untouched) does two things:

- a request with ``?token=`` is answered here: the right token gets the session cookie
  (HttpOnly, SameSite=Strict, for this server's path) and a redirect to the same address
  without the token; a wrong one gets 401;
- every response gets the headers of a page that trusts nothing from elsewhere: a
  Content-Security-Policy that allows scripts, styles, images and connections from this server
  only (no inline script at all; inline ``style`` attributes only, which the report's charts
  use to place their bars), no framing, no MIME sniffing, and no referrer sent to another site
  (a question link's signature must not leak; ``same-origin``, not ``no-referrer``, since with
  that Chromium sends ``Origin: null`` on the page's own form posts, which the Origin check
  refuses).

Whether a request may see a page is each page's decision (``plait.web._app``: most need the
token, a question page also takes its signed link), since only the page knows what it shows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ._auth import COOKIE, Keys

__all__ = ["CSP", "Guard"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)

_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def session_cookie(keys: Keys) -> str:
    return f"{COOKIE}={keys.session}; Path=/; HttpOnly; SameSite=Strict"


class Guard:
    """See the module docstring."""

    def __init__(self, app: ASGIApp, keys: Keys) -> None:
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        tokens = [value for name, value in query if name == "token"]
        if tokens:
            await self._token_in_query(scope, send, tokens[-1], query)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    header for header in _HEADERS if header[0] not in present
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _token_in_query(
        self, scope: Scope, send: Send, token: str, query: list[tuple[str, str]]
    ) -> None:
        if not self.keys.is_token(token):
            await _respond(send, 401, b"wrong token: open the address plait serve printed")
            return
        rest = urlencode([(name, value) for name, value in query if name != "token"])
        raw = scope.get("raw_path") or scope["path"].encode()
        # One leading slash: "//host/..." would send the browser to another host.
        path = "/" + raw.decode("latin-1").lstrip("/")
        location = path + (f"?{rest}" if rest else "")
        await _respond(
            send,
            303,
            b"",
            [(b"location", location.encode()), (b"set-cookie", session_cookie(self.keys).encode())],
        )


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *_HEADERS,
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
