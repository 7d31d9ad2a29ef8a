"""What one sync changed, and what it had to leave for the next."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Counts:
    """What a sync changed: in the CRM (created/updated/deleted) and at the provider (pushed)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    pushed: int = 0
    # What could not be stored or written, to be tried again by the next sync.
    skipped: list[str] = field(default_factory=list)

    def skip(self, what: str, why: str) -> None:
        """Record an event left out of this sync (logged by the caller)."""
        self.skipped.append(f"{what}: {why}")

    def skipped_summary(self) -> str | None:
        """The sync's ``error`` when events were skipped, naming the first few."""
        if not self.skipped:
            return None
        shown = "; ".join(self.skipped[:3])
        more = f" (and {len(self.skipped) - 3} more)" if len(self.skipped) > 3 else ""
        return (f"{len(self.skipped)} event(s) skipped, to be retried next sync: {shown}{more}")[
            :2000
        ]

    def snapshot(self) -> tuple[int, int, int, int]:
        """The counters, to restore after a rolled-back page (skips recorded since stay)."""
        return (self.created, self.updated, self.deleted, self.pushed)

    def restore(self, saved: tuple[int, int, int, int]) -> None:
        """Go back to ``snapshot()``'s counters."""
        self.created, self.updated, self.deleted, self.pushed = saved
