"""A database that is away or read-only (a failover in progress) is a 503 with Retry-After.

The real web process (`python -m amisite.serve`, pooled, DEBUG off), as in
tests/amisite/test_web_capacity.py: once pointed at a port where no PostgreSQL answers (the
primary died, nothing promoted yet), once at a server whose transactions are read-only (a
connection that still reaches the demoted primary, SQLSTATE 25006). Pages, the API and the
sign-out, raised in a view or in the middleware that loads the session, all answer 503 with
Retry-After and one warning line, never a 500 or a traceback; reads that need no write go on
being served from the read-only server.
"""

from __future__ import annotations

import http.client
import re

import pytest

from tests.amisite.test_web_capacity import _free_port, _get, _signed_in_cookie, web_process

pytestmark = pytest.mark.postgres


def _post(address, path, cookie, csrf):
    conn = http.client.HTTPConnection(*address, timeout=60)
    try:
        conn.request(
            "POST", path, body="",
            headers={"Cookie": f"sessionid={cookie}; csrftoken={csrf}", "X-CSRFToken": csrf,
                     "Referer": f"http://{address[0]}:{address[1]}/", "Content-Length": "0"},
        )  # fmt: skip
        response = conn.getresponse()
        response.read()
        return response.status, response.headers  # names in any case, as HTTP has them
    finally:
        conn.close()


def _assert_no_traceback(log):
    text = "".join(log)
    assert "Traceback" not in text, text
    assert " 500 " not in text, text


def test_no_database_answering_is_a_503_with_retry_after(transactional_db):
    cookie = _signed_in_cookie()
    gone = f"postgres://postgres@127.0.0.1:{_free_port()}/nothing"  # nothing listens there
    with web_process(DATABASE_URL=gone, DB_POOL_TIMEOUT="1") as (address, log):
        answers = {path: _get(address, path, cookie) for path in ("/meters/", "/api/meters/")}
        anonymous = _get(address, "/login/")
    for path, (status, headers) in answers.items():
        assert (status, headers.get("Retry-After")) == (503, "5"), (path, status, "".join(log))
    assert answers["/api/meters/"][1]["Content-Type"].startswith("application/json")
    assert anonymous[0] in (200, 503)  # the sign-in page needs no database until it is posted
    assert "database busy or unavailable" in "".join(log)
    _assert_no_traceback(log)


def test_a_read_only_database_serves_reads_and_answers_writes_with_503(transactional_db):
    cookie = _signed_in_cookie()
    with web_process(PGOPTIONS="-c default_transaction_read_only=on") as (address, log):
        status, headers = _get(address, "/meters/", cookie)
        assert status == 200, "".join(log)  # reading needs no primary
        csrf = re.search(r"csrftoken=([^;]+)", "; ".join(headers.get_all("Set-Cookie") or []))
        token = csrf.group(1) if csrf else "x" * 32
        signed_out = _post(address, "/logout/", cookie, token)  # deletes the session row
    assert (signed_out[0], signed_out[1].get("Retry-After")) == (503, "5"), "".join(log)
    _assert_no_traceback(log)
