"""Who may see and do what: the server token, its cookie, signed question links, CSRF.

The server has one secret *token* (``PLAIT_UI_TOKEN``, or a random one printed at start, as
Jupyter does). A request is let in when it carries it:

- ``Authorization: Bearer TOKEN`` (scripts);
- ``?token=TOKEN`` on any page, which sets the session cookie (HttpOnly, SameSite=Strict) and
  redirects to the same page without it, so the token leaves the address bar and the history;
- the session cookie: an HMAC of the token, never the token itself.

A *question link* (``/runs/RUN/questions/TASK?sig=EXPIRY.SIGNATURE``) lets its holder see and
answer that one question and nothing else: the signature is an HMAC of the run, the task and
the expiry under a key derived from the server secret (``PLAIT_UI_SECRET``, else the token), so
links outlive a restart when the secret does. Every comparison is constant-time
(:func:`hmac.compare_digest`).

A POST made with the cookie or a link (what a browser sends by itself) must also come from this
server's own pages: its ``Origin`` must be the server's, and its form must carry the CSRF token
of the page, an HMAC of the credential it was made with. A POST with a Bearer token is a script's
(a browser never adds that header by itself), so it needs neither.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from urllib.parse import quote

__all__ = [
    "COOKIE",
    "LINK_SECONDS",
    "Access",
    "Grant",
    "Keys",
    "question_path",
]

#: The session cookie's name.
COOKIE = "plait_session"

#: How long a question link stays valid by default: a week.
LINK_SECONDS = 7 * 24 * 3600.0


class Access(Enum):
    """What a request may do."""

    NONE = "none"
    FULL = "full"  # the token, its cookie: every page, every action
    QUESTION = "question"  # a signed link: one question


@dataclass(frozen=True, slots=True)
class Grant:
    """A request's access, and the credential it came with (the CSRF token is bound to it)."""

    access: Access
    credential: str = ""
    bearer: bool = False
    run_id: str | None = None
    task_id: str | None = None


def question_path(run_id: str, task_id: str) -> str:
    """The page of run ``run_id``'s question to ``task_id`` (each part URL-escaped)."""
    return f"/runs/{quote(run_id, safe='')}/questions/{quote(task_id, safe='')}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class Keys:
    """The server's token and the keys derived from its secret."""

    def __init__(self, token: str, secret: str | None = None) -> None:
        if not token:
            raise ValueError(
                "the server token must not be empty; leave PLAIT_UI_TOKEN unset for a random one"
            )
        self.token = token
        root = (secret or token).encode()
        self._key = hashlib.sha256(b"plait-ui\0" + root).digest()
        self.session = self._mac("session")

    @classmethod
    def random(cls) -> Keys:
        """Keys for a fresh random token (48 url-safe characters)."""
        return cls(secrets.token_urlsafe(36))

    def _mac(self, *parts: str) -> str:
        # As a JSON list, so that no two lists of parts make one message ("a\0b", "c" vs
        # "a", "b\0c").
        message = json.dumps(parts).encode()
        return _b64(hmac.new(self._key, message, hashlib.sha256).digest())

    def is_token(self, candidate: str) -> bool:
        """Whether ``candidate`` is the token (constant time)."""
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def is_session(self, candidate: str) -> bool:
        """Whether ``candidate`` is the session cookie's value (constant time)."""
        return hmac.compare_digest(candidate.encode(), self.session.encode())

    def sign_question(
        self, run_id: str, task_id: str, *, seconds: float = LINK_SECONDS, now: float | None = None
    ) -> str:
        """The ``sig`` of a link to run ``run_id``'s question to ``task_id``, valid ``seconds``."""
        expiry = int((time.time() if now is None else now) + seconds)
        return f"{expiry}.{self._mac('question', run_id, task_id, str(expiry))}"

    def check_question(
        self, sig: str, run_id: str, task_id: str, *, now: float | None = None
    ) -> bool:
        """Whether ``sig`` opens run ``run_id``'s question to ``task_id`` now."""
        expiry, dot, mac = sig.partition(".")
        if not dot or not expiry.isdigit():
            return False
        expected = self._mac("question", run_id, task_id, expiry)
        fresh = int(expiry) > (time.time() if now is None else now)
        return hmac.compare_digest(mac.encode(), expected.encode()) and fresh

    def question_link(self, run_id: str, task_id: str, *, seconds: float = LINK_SECONDS) -> str:
        """The path and query of a signed link to the question (no host: the page adds it)."""
        sig = self.sign_question(run_id, task_id, seconds=seconds)
        return f"{question_path(run_id, task_id)}?sig={sig}"

    def csrf(self, grant: Grant) -> str:
        """The CSRF token of pages shown under ``grant``."""
        return self._mac("csrf", grant.credential)

    def check_csrf(self, grant: Grant, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.csrf(grant).encode())
