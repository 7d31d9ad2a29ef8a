"""Peak Python memory of a sync: what a full pull holds at once, to show it is one page, not
the calendar (the same peak for a calendar five times larger)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable


def peak_mib(run: Callable[[], object]) -> float:
    """The peak of the memory ``run`` allocated and held at once, in MiB (tracemalloc; the
    fake providers serving it, in this process, count too: a page each)."""
    gc.collect()
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20
