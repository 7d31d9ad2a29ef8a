"""Series of providers whose listings show occurrences and exceptions, never the master."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..providers.types import (
    KIND_EXCEPTION,
    KIND_OCCURRENCE,
    CalendarClient,
    RemoteEvent,
    RemoteGone,
)
from .apply import Puller
from .reconcile import exclude_missing_occurrences


@dataclass
class SeriesMasters:
    """Reads series masters (for their rules) as their instances show up in a delta round."""

    puller: Puller
    client: CalendarClient
    fetched: set[str] = field(default_factory=set)

    def before(self, remote: RemoteEvent) -> None:
        """Make sure the series of an occurrence or exception is known, with its latest rule."""
        if remote.cancelled:
            link = self.puller.link_for(remote.external_id)
            series_id = None  # of a removed occurrence, or of a removed moved instance
            if link is not None:
                series_id = link.event_id if link.kind == "occurrence" else link.event.series_id
            if series_id is not None:
                master = self.puller.link_for_event(series_id)
                if master is not None:
                    # A deleted series removes all its occurrences: read the master first, so
                    # a series gone whole is deleted once, not excluded occurrence by occurrence.
                    self.fetch_master(master.external_id)
            return
        if remote.kind in (KIND_OCCURRENCE, KIND_EXCEPTION) and remote.series_external_id:
            self.fetch_master(remote.series_external_id)

    def fetch_master(self, master_id: str) -> None:
        """Read the master once per round and apply it like any listed event."""
        if master_id in self.fetched:
            return
        self.fetched.add(master_id)
        try:
            master = self.client.get(master_id)
        except RemoteGone:
            self.puller.remove(master_id, None)
            return
        self.puller.apply(master)

    def after_full_listing(self, start: datetime, end: datetime) -> None:
        """Occurrences a series' pattern has but the view no longer lists were cancelled."""
        for master_id in sorted(self.fetched):
            link = self.puller.link_for(master_id)
            if link is not None and link.event.deleted_at is None:
                exclude_missing_occurrences(self.puller, link.event, start, end)
