"""The events list reads its page through the index in its own order (PostgreSQL's EXPLAIN):
no sort of the user's whole calendar per request.

With fresh statistics only: the events table is analyzed by autovacuum as it grows, and with
statistics that underestimate a user's calendar the planner may sort it instead, which costs a
sort of one user's events, not a scan per event (unlike the pending query's failure mode)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from calendar_connections.extensions import db
from calendar_connections.operations.events import list_events

from .test_query_plans import (
    FRESH,
    USER,
    assert_no_seq_scan,
    explain,
    fill,
    pytestmark,
    statements,
)

__all__ = ["pytestmark"]


@pytest.fixture
def filled(app: Flask) -> Callable[[], int]:
    def load() -> int:
        return fill(db.engine, FRESH)

    return load


def test_a_list_page_walks_the_listing_index(app: Flask, filled: Callable[[], int]) -> None:
    with app.app_context():
        filled()
        with statements(db.engine) as sent:
            page = list_events(db.session(), USER, offset=200, limit=100)
        assert page.total == 5_000
        assert len(page.rows) == 100
        page_sql = [(sql, args) for sql, args in sent if "LIMIT" in sql and "event_link" not in sql]
        assert len(page_sql) == 1
        plan = explain(db.engine, *page_sql[0])
    assert "ix_calendar_event_listing" in plan, plan
    assert_no_seq_scan(plan, "calendar_event")
    # The index gives the order: the user's events are not sorted to find a page.
    assert "Sort" not in plan, plan
