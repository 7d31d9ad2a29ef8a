"""Retries are safe: an Idempotency-Key creates one event; a lost database is a 503 that
stored nothing."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event as sa_event
from sqlalchemy import update

from calendar_connections.extensions import db
from calendar_connections.models import IdempotencyKey, utcnow

from .support.events import BASE, T1, T2, row_count, timed
from .support.problems import assert_problem

ON_POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith("postgresql")


def post(client: FlaskClient, auth: dict[str, str], body: dict[str, Any], key: str | None) -> Any:
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    return client.post(BASE, json=body, headers=headers)


def test_a_repeated_key_returns_the_first_answer_and_creates_one_event(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    body = timed("Review", T1, T2)
    first = post(client, auth, body, "key-1")
    again = post(client, auth, dict(reversed(list(body.items()))), "key-1")

    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert row_count(app) == 1


def test_the_same_key_with_another_body_is_a_422(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    assert post(client, auth, timed("Review", T1, T2), "key-1").status_code == 201
    body = assert_problem(post(client, auth, timed("Other", T1, T2), "key-1"), 422)
    assert "key-1" in body["detail"]
    assert row_count(app) == 1


def test_keys_belong_to_their_user(
    app: Flask,
    client: FlaskClient,
    auth: dict[str, str],
    token_for: Callable[[str], dict[str, str]],
) -> None:
    body = timed("Review", T1, T2)
    mine = post(client, auth, body, "shared-key")
    theirs = post(client, token_for("user-2"), body, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json["id"] != theirs.json["id"]
    assert row_count(app) == 2


def test_a_failed_request_stores_nothing_so_its_key_can_be_retried(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    refused = post(client, auth, timed("Review", T2, T1), "key-1")
    assert_problem(refused, 422)
    assert row_count(app) == 0
    assert post(client, auth, timed("Review", T2, T1), "key-1").status_code == 422
    assert post(client, auth, timed("Review", T1, T2), "key-1").status_code == 201
    assert row_count(app) == 1


def test_a_key_older_than_24_hours_creates_anew(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    body = timed("Review", T1, T2)
    first = post(client, auth, body, "key-1")
    with app.app_context():
        db.session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, seconds=1))
        )
        db.session.commit()
    later = post(client, auth, body, "key-1")
    assert later.status_code == 201
    assert later.json["id"] != first.json["id"]
    assert "Idempotent-Replayed" not in later.headers
    assert row_count(app) == 2


def test_racing_requests_with_one_key_create_one_event(app: Flask, auth: dict[str, str]) -> None:
    body = timed("Review", T1, T2)
    start = threading.Barrier(4)
    answers: list[Any] = []

    def send() -> None:
        client = app.test_client()
        start.wait()
        answers.append(post(client, auth, body, "raced"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [answer.status_code for answer in answers] == [201] * 4
    assert len({answer.json["id"] for answer in answers}) == 1
    assert row_count(app) == 1


def test_a_database_that_cannot_be_reached_is_a_503_with_retry_after(
    make_app: Callable[..., Flask], auth: dict[str, str], tmp_path: Any
) -> None:
    unreachable = (
        "postgresql+psycopg://postgres@127.0.0.1:9/none?connect_timeout=2"
        if ON_POSTGRES
        else f"sqlite:///{tmp_path}/missing/dir/x.sqlite"
    )
    app = make_app(DATABASE_URL=unreachable)
    client = app.test_client()
    for response in (
        client.get(BASE, headers=auth),
        client.post(BASE, json=timed("Review", T1, T2), headers=auth),
    ):
        body = assert_problem(response, 503)
        assert response.headers["Retry-After"] == "5"
        assert body["requestId"] == response.headers["X-Request-ID"]


@pytest.mark.postgres
@pytest.mark.skipif(not ON_POSTGRES, reason="terminates a PostgreSQL backend")
@pytest.mark.parametrize("with_key", [False, True])
def test_the_database_dropping_mid_request_is_a_503_that_stored_nothing(
    app: Flask, client: FlaskClient, auth: dict[str, str], database_url: str, with_key: bool
) -> None:
    """The connection dies between the event's INSERT and the COMMIT."""
    killer = sa.create_engine(database_url)

    def kill_backend(session: Any) -> None:
        pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with killer.begin() as conn:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})

    with app.app_context():
        sa_event.listen(db.session, "before_commit", kill_backend)
    try:
        response = post(client, auth, timed("Review", T1, T2), "k" if with_key else None)
    finally:
        with app.app_context():
            sa_event.remove(db.session, "before_commit", kill_backend)
        killer.dispose()

    body = assert_problem(response, 503)
    assert body["requestId"] == response.headers["X-Request-ID"]
    assert response.headers["Retry-After"]
    assert row_count(app) == 0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(IdempotencyKey)) == 0
    # The retry, with the database back, creates the event once.
    assert post(client, auth, timed("Review", T1, T2), "k").status_code == 201
    assert row_count(app) == 1
