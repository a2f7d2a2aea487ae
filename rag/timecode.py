"""Reading and writing timestamps: ``13:36``, ``1:02:03``, ``00:06:01.01``."""

from __future__ import annotations

import re

# [H:]MM:SS[.frac] — hours optional, fractional seconds optional.
TIME_RE = re.compile(r"(?:(\d{1,2}):)?(\d{1,3}):(\d{2})(?:[.,](\d+))?")


def parse_time(text: str) -> float:
    """``"13:36"`` -> 816.0; ``"00:06:01.01"`` -> 361.01. Raises ValueError on anything else."""
    m = TIME_RE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a timestamp: {text!r} (expected MM:SS or HH:MM:SS)")
    hours, minutes, seconds, frac = m.groups()
    if int(seconds) >= 60:
        raise ValueError(f"not a timestamp: {text!r} (seconds must be below 60)")
    value = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    if frac:
        value += float("0." + frac)
    return float(value)


def format_time(seconds: float) -> str:
    """816.4 -> ``"13:36"``; 3725 -> ``"1:02:05"``. Rounds down, like a player's clock."""
    total = int(max(seconds, 0.0))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
