"""Text that no database can store the same way: NUL characters and lone surrogates.

SQLite keeps a NUL where PostgreSQL refuses it, and neither can encode a lone UTF-16
surrogate (``"\\ud800"``, which JSON can spell) as UTF-8: both are refused at the edge.
"""

from __future__ import annotations


def unstorable_reason(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    if "\x00" in value:
        return "Contains a NUL character (U+0000), which text cannot hold."
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"Contains a lone surrogate (U+{ord(value[exc.start]):04X}) at character "
            f"{exc.start}: send valid Unicode."
        )
    return None
