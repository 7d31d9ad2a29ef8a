"""Property: random interleavings of CRM edits, provider edits and syncs converge.

Each example starts from an empty CRM and a reset provider sandbox (mounted in-process), connects
through the sandbox's OAuth flow, creates a few events on either side and syncs, then runs random
steps: create, change (title, or timing) and delete events in the CRM (events API) or at the
provider (the sandbox's owner-edit control API); change one event on both sides in turn (a
conflict); sync; run a sync that crashes after its listing's first page; expire the provider's
sync tokens; run a sync during which the CRM changes or deletes an event through the API (at the
sync's first provider write, or its first listing when it writes nothing); run a sync whose
provider writes are slow against a lease shorter than the whole push. Events are timed (in one
of a few zones) or all-day, within the next days; no recurring series. Events created at the
provider carry attendees and, sometimes, a description with NUL characters, lone surrogates or
over 64 KiB of text. After a final sync (a second one if the first left the sides apart) both sides
must hold the same events (title, start/end instants, all-day dates), none duplicated (one CRM
event per provider event and the other way round, counts equal) and none lost.

Every event carries a key in its location, set when it is created and never edited, so the test
can tell events apart on both sides. What a key must look like follows from what happened to it
since the last completed sync (a crashed sync completes nothing; a creation counts as a change):

- changed on one side only: both sides end with that side's version;
- changed on both sides: the later modification wins, judged as the engine does, by the CRM's
  ``updatedAt`` against the provider's ``updated`` / ``lastModifiedDateTime``; the whole event
  wins, not field by field. Edits are ``PAUSE`` apart, but when two stamps are within ``TIE``
  the order is ambiguous (Google keeps milliseconds): either version may win, both sides agreeing;
- deleted on one side: gone from both, unless the other side changed it in the same interval
  (a delete against an edit): then either outcome is allowed, as long as both sides agree;
- created on either side and deleted on neither: present on both sides;
- changed or deleted through the API while a sync runs: as if it happened right after that
  sync (the next one carries it out); a sync it happens under still succeeds.

No provider event loses its attendees.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask, request
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from calendar_connections.config import get_settings
from calendar_connections.crypto import get_cipher
from calendar_connections.extensions import db
from calendar_connections.models import CalendarConnection, CalendarEvent, EventLink
from calendar_connections.sync.service import run_sync

from .support.sandbox import (
    EVENTS,
    SIDES,
    Sandbox,
    Side,
    Timing,
    View,
    connect,
    crm_items,
    crm_view,
    empty_tables,
    sandbox_config,
    sync,
)

TIE = timedelta(milliseconds=2)  # Google keeps milliseconds
PAUSE = 0.003  # seconds between edits, so that most conflicts have a clear winner
TITLES = "ABC"
ZONES = ["UTC", "Europe/Berlin", "America/New_York"]
OTHER = {"crm": "provider", "provider": "crm"}


# A lease shorter than a slow push: the heartbeat must carry it (see ``Op("slow")``).
pytestmark = pytest.mark.app_config(**sandbox_config(SYNC_LEASE_TTL=2))


@pytest.fixture
def sandbox(http: responses.RequestsMock) -> Sandbox:
    sandbox = Sandbox.mount(http)
    hooks: list[Callable[[str, str], None]] = []
    sandbox.app.config["HOOKS"] = hooks

    @sandbox.app.before_request
    def run_hooks() -> None:
        for hook in list(hooks):
            hook(request.method, request.path)

    return sandbox


@dataclass(frozen=True)
class When:
    """A timing relative to the example's base day: timed (hours) or all-day (days)."""

    day: int
    hour: int | None  # None: all-day
    length: int  # hours, or days when all-day
    zone: str = "UTC"  # of a timed event

    def timing(self, base: date) -> Timing:
        day = base + timedelta(days=self.day)
        if self.hour is None:
            return Timing(day, day + timedelta(days=self.length))
        start = datetime(day.year, day.month, day.day, self.hour, tzinfo=UTC)
        return Timing(start, start + timedelta(hours=self.length), self.zone)


@dataclass(frozen=True)
class Op:
    """One step: ``create``/``update``/``delete`` on ``crm`` or ``provider``; ``conflict``
    (a title change on ``where``, then a timing change of the same event on the other side);
    ``sync``, ``kill``, ``expire``, ``slow``; or ``midsync`` (an ``update``, or a ``delete``
    when ``title`` is None, made through the API while a sync runs)."""

    action: str
    where: str = ""
    pick: int = 0
    title: str | None = None
    when: When | None = None


whens = st.builds(
    When,
    day=st.integers(0, 6),
    hour=st.one_of(st.none(), st.integers(0, 21)),
    length=st.integers(1, 2),
    zone=st.sampled_from(ZONES),
)
titles = st.sampled_from(TITLES)
wheres = st.sampled_from(["crm", "provider"])
creates = st.builds(Op, action=st.just("create"), where=wheres, title=titles, when=whens)
deletes = st.builds(Op, action=st.just("delete"), where=wheres, pick=st.integers(0, 3))
ops = st.one_of(
    creates,
    st.builds(
        Op,
        action=st.just("update"),
        where=wheres,
        pick=st.integers(0, 3),
        title=titles,
        when=st.none(),
    ),
    st.builds(
        Op,
        action=st.just("update"),
        where=wheres,
        pick=st.integers(0, 3),
        title=st.none(),
        when=whens,
    ),
    deletes,
    deletes,  # twice as likely: a delete is what a sync most easily loses
    st.builds(
        Op,
        action=st.just("conflict"),
        where=wheres,
        pick=st.integers(0, 3),
        title=titles,
        when=whens,
    ),
    st.just(Op("sync")),
    st.just(Op("kill")),
    st.just(Op("expire")),
    st.just(Op("slow")),
    st.builds(
        Op,
        action=st.just("midsync"),
        pick=st.integers(0, 3),
        title=st.one_of(st.none(), titles),
    ),
)
ODD_TEXT = ["Agenda\x00with a NUL", "half \ud800 a pair", "long " + "y" * 70_000, None]
ATTENDEES = ["ann@example.test", "bob@example.test"]


@dataclass
class Edit:
    """A key's last change on one side since the last sync."""

    at: datetime
    view: View


@dataclass
class Expect:
    """What a key must look like after a sync (None: either outcome, both sides agreeing)."""

    exists: bool | None = None
    view: View | None = None
    edits: dict[str, Edit] = field(default_factory=dict)  # a creation counts as an edit
    deleted: set[str] = field(default_factory=set)

    def settle(self) -> None:
        """Apply the rules of the module docstring to what happened since the last sync."""
        crm, provider = self.edits.get("crm"), self.edits.get("provider")
        if self.deleted:
            # A delete against an edit on the other side: ambiguous, either may win.
            against = any(side not in self.deleted for side in self.edits)
            self.exists = None if against else False
            self.view = None
        elif crm is not None and provider is not None:
            self.exists = True
            if abs(crm.at - provider.at) <= TIE:
                self.view = None
            else:
                self.view = crm.view if crm.at > provider.at else provider.view
        elif crm is not None or provider is not None:
            self.exists, self.view = True, (crm or provider).view  # type: ignore[union-attr]
        self.edits, self.deleted = {}, set()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class Killed(Exception):
    """The crash a ``kill`` step injects into a sync."""


class Run:
    """One example: applies operations to both sides and keeps the expected outcome."""

    def __init__(
        self, app: Flask, client: FlaskClient, auth: dict[str, str], sandbox: Sandbox, side: Side
    ) -> None:
        self.app, self.client, self.auth = app, client, auth
        self.sandbox, self.side = sandbox, side
        self.base = datetime.now(UTC).date() + timedelta(days=2)
        self.keys: dict[str, Expect] = {}
        self.invited: set[str] = set()  # keys created at the provider, with attendees

    def apply(self, op: Op) -> None:
        if op.action == "sync":
            self.sync()
        elif op.action == "slow":
            self.slow_sync()
        elif op.action == "midsync":
            self.midsync(op)
        elif op.action == "kill":
            self.killed_sync()
        elif op.action == "expire":
            self.sandbox.call("POST", "/expire-sync-tokens")
        elif op.action == "create":
            self.create(op)
        else:
            key = self.pick(op)
            if key is None:
                return
            if op.action == "delete":
                self.delete(op.where, key)
            elif op.action == "update":
                self.change(op.where, key, op.title, op.when)
            else:  # both sides change it, one after the other: a conflict for the next sync
                self.change(op.where, key, op.title, None)
                time.sleep(PAUSE)
                self.change(OTHER[op.where], key, None, op.when)
        if op.action in ("create", "update", "delete", "conflict"):
            time.sleep(PAUSE)

    def killed_sync(self) -> None:
        """A sync that crashes once its listing's first page is applied (before the push)."""

        def crash(page: int) -> None:
            raise Killed(page)

        with self.app.app_context():
            connection = db.session.scalars(select(CalendarConnection)).one()
            result = run_sync(
                db.session, connection, get_settings(self.app), get_cipher(), on_page=crash
            )
        assert not result.success  # nothing settles: the changes wait for the next sync

    def sync(self) -> dict[str, Any]:
        result = sync(self.client, self.auth, self.side)
        for expect in self.keys.values():
            expect.settle()
        return result

    def slow_sync(self) -> None:
        """A sync whose provider writes take 0.6 s each: five outlast the 2 s lease."""
        self.sandbox.fault(method="POST", path="/events", delay=0.6, times=5)
        self.sandbox.fault(method="PATCH", path="/events/", delay=0.6, times=5)
        self.sync()
        self.sandbox.call("DELETE", "/faults", status=204)

    def midsync(self, op: Op) -> None:
        """A sync during which the API changes (or deletes) a CRM event, at the sync's first
        provider write, or its first listing if it writes nothing."""
        key = self.pick(Op("update", "crm", op.pick))
        if key is None:
            self.sync()
            return
        hooks: list[Callable[[str, str], None]] = self.sandbox.app.config["HOOKS"]
        expect = self.keys[key]
        later: list[tuple[dict[str, Edit], set[str]]] = []

        def write(method: str, path: str) -> None:
            listing = method == "GET" and path.endswith(("/events", "/delta"))
            first_write = method in ("POST", "PATCH", "DELETE") and "/token" not in path
            if later or not (first_write or (listing and not self.writes_pending())):
                return
            hooks.clear()
            before = (dict(expect.edits), set(expect.deleted))
            if op.title is None:
                self.delete("crm", key)
            else:
                self.change("crm", key, op.title * 2, None)
            # What the API wrote during the sync counts as written right after it.
            later.append((dict(expect.edits), set(expect.deleted)))
            expect.edits, expect.deleted = before

        hooks.append(write)
        try:
            self.sync()
        finally:
            hooks.clear()
        if not later:  # it wrote nothing after all: the API writes right after it
            if key not in self.live("crm"):
                return  # the sync deleted it
            write("POST", "/events")
        edits, deleted = later[0]
        if "crm" in deleted:
            expect.deleted.add("crm")
        elif "crm" in edits:
            expect.edits["crm"] = edits["crm"]

    def writes_pending(self) -> bool:
        """Whether the CRM has changes for the provider (else the sync writes nothing)."""
        with self.app.app_context():
            linked = select(EventLink.event_id)
            unpushed = (
                select(func.count())
                .select_from(CalendarEvent)
                .where(
                    (CalendarEvent.id.not_in(linked) & CalendarEvent.deleted_at.is_(None))
                    | CalendarEvent.id.in_(
                        select(EventLink.event_id).where(
                            EventLink.synced_version < CalendarEvent.version
                        )
                    )
                )
            )
            return bool(db.session.scalar(unpushed))

    def create(self, op: Op) -> None:
        assert op.when is not None and op.title is not None
        key = f"k{len(self.keys) + 1}"
        timing = op.when.timing(self.base)
        if op.where == "crm":
            body = {"title": op.title, "location": key, **timing.crm()}
            answer = self.client.post(EVENTS, json=body, headers=self.auth)
            assert answer.status_code == 201, answer.json
            edit = Edit(_time(answer.json["updatedAt"]), crm_view(answer.json))
        else:
            body = self.side.body(op.title, timing, key) | self.invitation(len(self.keys))
            item = self.sandbox.create(self.side, body)
            edit = Edit(self.side.modified(item), self.side.view(item))
            self.invited.add(key)
        self.keys[key] = Expect(edits={op.where: edit})

    def invitation(self, number: int) -> dict[str, Any]:
        """What an invitation carries besides our fields: attendees, odd text."""
        text = ODD_TEXT[number % len(ODD_TEXT)]
        if self.side.name == "GOOGLE":
            extra: dict[str, Any] = {"attendees": [{"email": who} for who in ATTENDEES]}
            return extra | ({"description": text} if text else {})
        people = [{"emailAddress": {"address": who}, "type": "required"} for who in ATTENDEES]
        extra = {"attendees": people}
        return extra | ({"body": {"contentType": "text", "content": text}} if text else {})

    def attendees(self, item: dict[str, Any]) -> list[str]:
        if self.side.name == "GOOGLE":
            return sorted(person["email"] for person in item.get("attendees") or [])
        return sorted(person["emailAddress"]["address"] for person in item.get("attendees") or [])

    def live(self, where: str) -> dict[str, dict[str, Any]]:
        """The live events of one side, by key."""
        if where == "crm":
            return {item["location"]: item for item in crm_items(self.client, self.auth)}
        return {str(self.side.view(item).key): item for item in self.sandbox.items(self.side)}

    def pick(self, op: Op) -> str | None:
        """The key ``op`` acts on: one of its side's, or of both sides' for a conflict."""
        keys = set(self.live(op.where))
        if op.action == "conflict":
            keys &= set(self.live(OTHER[op.where]))
        return sorted(keys)[op.pick % len(keys)] if keys else None

    def delete(self, where: str, key: str) -> None:
        item = self.live(where)[key]
        if where == "crm":
            answer = self.client.delete(f"{EVENTS}/{item['id']}", headers=self.auth)
            assert answer.status_code == 204, answer.json
        else:
            self.sandbox.delete(self.side, item["id"])
            self.invited.discard(key)  # a copy made again is a new event, without attendees
        self.keys[key].deleted.add(where)

    def change(self, where: str, key: str, title: str | None, when: When | None) -> None:
        item = self.live(where)[key]
        timing = when.timing(self.base) if when else None
        if where == "crm":
            body = {"title": title} if title else timing.crm()  # type: ignore[union-attr]
            answer = self.client.patch(f"{EVENTS}/{item['id']}", json=body, headers=self.auth)
            assert answer.status_code == 200, answer.json
            if answer.json["updatedAt"] == item["updatedAt"]:
                return  # nothing changed: the event was not touched
            edit = Edit(_time(answer.json["updatedAt"]), crm_view(answer.json))
        else:
            # A provider write is a modification even when it changes nothing.
            changed = self.sandbox.patch(self.side, item["id"], self.side.body(title, timing))
            edit = Edit(self.side.modified(changed), self.side.view(changed))
        self.keys[key].edits[where] = edit

    def check(self) -> None:
        """Both sides hold the same events, none duplicated, none lost, as expected."""
        crm = crm_items(self.client, self.auth)
        provider = self.sandbox.items(self.side)
        crm_views = sorted((crm_view(item) for item in crm), key=repr)
        provider_views = sorted((self.side.view(item) for item in provider), key=repr)
        if crm_views != provider_views:  # one more sync may be needed to converge
            self.sync()
            crm = crm_items(self.client, self.auth)
            provider = self.sandbox.items(self.side)
            crm_views = sorted((crm_view(item) for item in crm), key=repr)
            provider_views = sorted((self.side.view(item) for item in provider), key=repr)
        assert crm_views == provider_views
        keys = Counter(view.key for view in crm_views)
        assert all(count == 1 for count in keys.values()), keys
        # Each CRM event is linked to exactly one provider event, and each provider event to one.
        linked = [item["sources"].get(self.side.name) for item in crm]
        assert None not in linked
        assert sorted(linked) == sorted(item["id"] for item in provider)
        with self.app.app_context():
            assert db.session.scalar(select(func.count()).select_from(EventLink)) == len(crm)
            # Every delete was carried out: no tombstone is still linked to a provider event.
            tombstones = (
                select(EventLink).join(CalendarEvent).where(CalendarEvent.deleted_at.is_not(None))
            )
            assert db.session.scalars(tombstones).all() == []
        for item in provider:
            if self.side.view(item).key in self.invited:
                assert self.attendees(item) == ATTENDEES, item
        views = {view.key: view for view in crm_views}
        for key, expect in self.keys.items():
            if expect.exists is not None:
                assert (key in views) == expect.exists, (key, expect)
            if expect.exists and expect.view is not None:
                assert views[key] == expect.view, (key, expect)


@pytest.mark.parametrize("side", SIDES, ids=[side.slug for side in SIDES])
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.lists(creates, min_size=2, max_size=4), steps=st.lists(ops, min_size=2, max_size=16))
def test_random_edits_and_syncs_converge(
    app: Flask,
    http: responses.RequestsMock,
    client: FlaskClient,
    auth: dict[str, str],
    sandbox: Sandbox,
    side: Side,
    seed: list[Op],
    steps: list[Op],
) -> None:
    """After random CRM edits, provider edits and syncs, both sides hold the same events."""
    http.calls.reset()  # `responses` keeps every call: not across examples
    sandbox.reset()
    empty_tables(app)
    connect(client, auth, side)
    run = Run(app, client, auth, sandbox, side)
    # Some events on both sides first, so that most steps have something to act on.
    for step in [*seed, Op("sync"), *steps]:
        run.apply(step)
    run.sync()
    run.check()
