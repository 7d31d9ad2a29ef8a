"""The pull's database work is bounded by a constant per page, not per event: a page's links
are read in one query and its events written in bulk. Pinned by counting the SQL statements
a sync issues (an ``executemany`` is one statement) for pages of 10, 100 and 200 events.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from calendar_connections.extensions import db

from .support.sandbox import (
    EVENTS,
    GOOGLE,
    Sandbox,
    Side,
    connect,
    crm_items,
    sandbox_config,
    sync,
    timing,
)

pytestmark = pytest.mark.app_config(**sandbox_config())

SIZES = (10, 100, 200)  # each one page: Graph's pages hold 200 events, Google's 2,500
# A no-change incremental sync: lease, status, token, cursor, the push's query, the
# refreshes of the connection after each commit (Google 17, Graph 18 with its confirmation).
NO_CHANGE_LIMIT = 18


@contextmanager
def statements(app: Flask) -> Iterator[list[str]]:
    """The SQL statements this thread sends while the block runs (the lease's heartbeat
    renews from a thread of its own, when it must: not counted)."""
    seen: list[str] = []
    me = threading.get_ident()

    def count(*args: Any) -> None:
        if threading.get_ident() == me:
            seen.append(args[2])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def counted_sync(
    app: Flask, client: FlaskClient, auth: dict[str, str], side: Side
) -> tuple[dict[str, Any], int]:
    with statements(app) as seen:
        result = sync(client, auth, side)
    return result, len(seen)


def test_statements_per_page_do_not_grow_with_the_page(
    app: Flask, client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """Pages of 10, 100 and 200 new events, then of as many changed ones, each cost the same
    number of statements; a sync with nothing new costs a few."""
    connect(client, auth, side)
    sync(client, auth, side)  # the first, full listing (of nothing)
    created: dict[int, int] = {}
    updated: dict[int, int] = {}
    day = 1.0
    for size in SIZES:
        ids = []
        for n in range(size):
            day += 0.05
            ids.append(sandbox.create(side, side.body(f"New {size}/{n}", timing(day)))["id"])
        result, created[size] = counted_sync(app, client, auth, side)
        assert result["eventsCreated"] == size
        for n, external_id in enumerate(ids):
            sandbox.patch(side, external_id, side.body(f"Changed {size}/{n}"))
        result, updated[size] = counted_sync(app, client, auth, side)
        assert (result["eventsCreated"], result["eventsUpdated"]) == (0, size)

    assert len(set(created.values())) == 1, created
    assert len(set(updated.values())) == 1, updated
    _, quiet = counted_sync(app, client, auth, side)
    _, again = counted_sync(app, client, auth, side)
    assert quiet == again <= NO_CHANGE_LIMIT


def test_tags_naming_nothing_the_crm_could_hold_do_not_fail_the_page(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox
) -> None:
    """A page's tags are looked up together: one naming an id beyond 32 bits, or a uid no
    event could have, names no CRM event (its provider event is new), and a tag naming a CRM
    event links the copy to it; the rest of the page syncs."""
    connect(client, auth, GOOGLE)
    crm = client.post(EVENTS, json=timing(3).crm() | {"title": "Mine"}, headers=auth)
    assert crm.status_code == 201, crm.json
    tags = ["9" * 18, "x" * 40, "caf\u00e9" * 8, str(crm.json["id"])]
    for n, tag in enumerate(tags):
        body = GOOGLE.body("Mine" if n == 3 else f"Tagged {n}", timing(3 if n == 3 else 2 + n))
        body["extendedProperties"] = {"private": {"crmEventId": tag}}
        sandbox.create(GOOGLE, body)

    result = sync(client, auth, GOOGLE)

    assert (result["eventsCreated"], result["error"]) == (3, None)
    titles = sorted(item["title"] for item in crm_items(client, auth))
    assert titles == ["Mine", "Tagged 0", "Tagged 1", "Tagged 2"]
    assert len(sandbox.items(GOOGLE)) == 4  # the tagged copy was linked, not pushed again


def test_text_written_in_bulk_comes_back_as_it_was_sent(
    client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
) -> None:
    """Quotes, braces, commas, backslashes and the word NULL (an array literal's syntax, on
    PostgreSQL) survive the bulk insert, with an empty location and a missing one."""
    connect(client, auth, side)
    odd = 'a "quoted" {braced}, \\back\\slash\\ NULL \u00e9\u6f22'
    sandbox.create(side, side.body(odd, timing(2), "NULL"))
    sandbox.create(side, side.body("NULL", timing(3), ""))
    sandbox.create(side, side.body("{}", timing(4)))

    assert sync(client, auth, side)["eventsCreated"] == 3
    got = sorted((item["title"], item["location"]) for item in crm_items(client, auth))
    assert [title for title, _ in got] == sorted([odd, "NULL", "{}"])
    assert dict(got)[odd] == "NULL"
    assert dict(got)["NULL"] in ("", None)
