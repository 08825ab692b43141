"""The token, the session cookie, signed question links, CSRF and Origin checks, headers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from plait.web import Keys

from .conftest import TOKEN


def test_a_question_link_opens_its_question_until_it_expires() -> None:
    keys = Keys("k")
    sig = keys.sign_question("r1", "approve", seconds=60, now=1000.0)
    assert keys.check_question(sig, "r1", "approve", now=1059.0)
    assert not keys.check_question(sig, "r1", "approve", now=1061.0)  # expired
    assert not keys.check_question(sig, "r1", "ship", now=1000.0)  # another task
    assert not keys.check_question(sig, "r2", "approve", now=1000.0)  # another run
    expiry, mac = sig.split(".")
    assert not keys.check_question(f"{int(expiry) + 100}.{mac}", "r1", "approve", now=1000.0)
    assert not keys.check_question("garbage", "r1", "approve", now=1000.0)


def test_parts_cannot_be_shifted_from_the_run_to_the_task() -> None:
    keys = Keys("k")
    sig = keys.sign_question("a\0b", "c", now=0.0)
    assert not keys.check_question(sig, "a", "b\0c", now=0.0)


def test_links_depend_on_the_secret_not_only_the_run() -> None:
    one, other = Keys("token", "secret-1"), Keys("token", "secret-2")
    sig = one.sign_question("r1", "t", now=0.0)
    assert not other.check_question(sig, "r1", "t", now=0.0)
    assert Keys("token2", "secret-1").check_question(sig, "r1", "t", now=0.0)  # same secret


def test_an_empty_token_is_refused() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        Keys("")


def test_no_token_is_401_on_every_page(anonymous: TestClient) -> None:
    for path in ("/", "/runs", "/runs/r1", "/inbox", "/inbox/live", "/runs/r1/part"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert "needs the token" in response.text
    assert anonymous.post("/runs/r1/cancel").status_code == 401
    assert anonymous.get("/runs/r1/questions/approve").status_code == 401


def test_the_token_in_the_address_sets_the_cookie_and_leaves_the_address(
    anonymous: TestClient, keys: Keys
) -> None:
    response = anonymous.get(f"/runs?status=paused&token={TOKEN}")
    assert response.status_code == 303
    assert response.headers["location"] == "/runs?status=paused"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"plait_session={keys.session};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie  # the cookie is an HMAC of the token, not the token
    assert anonymous.get("/runs?token=wrong").status_code == 401
    elsewhere = anonymous.get(f"http://testserver//evil.example/x?token={TOKEN}")
    assert elsewhere.headers["location"] == "/evil.example/x"  # never another host


def test_a_bearer_token_opens_pages_and_acts_without_csrf(anonymous: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert anonymous.get("/runs", headers=headers).status_code == 200
    assert anonymous.get("/runs", headers={"Authorization": "Bearer nope"}).status_code == 401
    response = anonymous.post("/runs/r1/cancel", headers=headers)
    assert response.status_code == 303
    assert anonymous.get("/runs/r1", headers=headers).text.count("cancelled") >= 1


def test_a_post_from_another_origin_is_403_and_changes_nothing(client: TestClient) -> None:
    page = client.get("/runs/r1")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    for origin in ("http://evil.example", "null"):
        refused = client.post(
            "/runs/r1/cancel", data={"csrf": csrf.group(1)}, headers={"Origin": origin}
        )
        assert refused.status_code == 403
        assert "not sent from this server's page" in refused.text
    no_origin = client.post("/runs/r1/cancel", data={"csrf": csrf.group(1)})
    assert no_origin.status_code == 403
    assert "paused" in client.get("/runs/r1").text


def test_a_post_without_the_csrf_token_is_403(client: TestClient) -> None:
    origin = {"Origin": "http://testserver"}
    assert client.post("/runs/r1/cancel", data={}, headers=origin).status_code == 403
    wrong = client.post("/runs/r1/cancel", data={"csrf": "x"}, headers=origin)
    assert wrong.status_code == 403
    assert "CSRF" in wrong.text


def test_a_signed_link_opens_its_question_and_nothing_else(
    anonymous: TestClient, keys: Keys
) -> None:
    link = keys.question_link("r1", "approve")
    sig = link.split("sig=")[1]
    assert anonymous.get(link).status_code == 200
    assert anonymous.get(f"/runs/r1?sig={sig}").status_code == 401
    assert anonymous.get(f"/inbox?sig={sig}").status_code == 401
    assert anonymous.get(f"/runs/r1/questions/ship?sig={sig}").status_code == 401
    page = anonymous.get(link).text
    assert 'href="/runs"' not in page  # no navigation to what the link does not open


def test_every_response_forbids_what_comes_from_elsewhere(client: TestClient) -> None:
    for path in ("/runs", "/runs/r1", "/inbox", "/static/web/live.js", "/nowhere"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp, path
        assert "'unsafe-inline'" not in csp.replace("style-src-attr 'unsafe-inline'", "")
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-content-type-options"] == "nosniff"


@given(st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_a_link_opens_exactly_its_own_question(run_id: str, task_id: str, other: str) -> None:
    keys = Keys("token")
    sig = keys.sign_question(run_id, task_id, now=0.0)
    assert keys.check_question(sig, run_id, task_id, now=0.0)
    if other != task_id:
        assert not keys.check_question(sig, run_id, other, now=0.0)
    if other != run_id:
        assert not keys.check_question(sig, other, task_id, now=0.0)
