"""Progress of long work (index builds) on a stream: one printer every surface hands to ``rag.api``
(the command line, ``rag chat``, ``rag serve`` and the MCP server)."""

from __future__ import annotations

import sys
import time

LOG_EVERY_S = 30.0   # a tenth of the catalog's passages takes 4 minutes: a log hears sooner


def progress_printer(stream=None):
    """Progress of long builds on stderr: a redrawn bar with the rate and an ETA on a terminal (a
    line at each tenth elsewhere, and at least every ``LOG_EVERY_S`` of a long stage). A stage
    with no known total ("reading transcripts") counts up. The rate waits for half a second of
    work: a stage served from the cache finishes at once, and a rate over microseconds means
    nothing."""
    stream = stream or sys.stderr
    state = {"stage": None, "t0": 0.0, "drawn": 0.0, "tenth": -1, "base": 0}
    tty = stream.isatty()

    def label(stage: str) -> str:
        return {"read": "reading transcripts", "chunk": "chunking episodes",
                "graph": "linking the passage graph"}.get(stage, f"embedding {stage}")

    def report(stage: str, done: int, total: int) -> None:
        if total == 0 and done == 0:  # a message, not a stage (e.g. waiting for another build)
            stream.write(("\n" if tty and state["stage"] else "") + stage + "\n")
            state["stage"] = None
            stream.flush()
            return
        now = time.monotonic()
        if stage != state["stage"]:
            if state["stage"] is not None and tty:
                stream.write("\n")
            # What a stage starts with (texts found in the cache) is not work done at its rate.
            state.update(stage=stage, t0=now, drawn=0.0, tenth=-1, base=done if total else 0)
        elapsed = now - state["t0"]
        finished = total and done >= total
        rate = (done - state["base"]) / elapsed if elapsed >= 0.5 and done > state["base"] else None
        if total:
            eta = f", ETA {_duration((total - done) / rate)}" if rate and not finished else ""
            line = f"{label(stage)} {done}/{total}"
        else:
            eta, line = "", f"{label(stage)} {done}"
        pace = f" ({rate:.0f}/s{eta})" if rate else ""
        if tty:
            if now - state["drawn"] < 0.1 and not finished:
                return
            state["drawn"] = now
            bar = ""
            if total:
                filled = int(30 * done / total)
                bar = f" [{'#' * filled}{'.' * (30 - filled)}]"
            stream.write(f"\r{line}{bar}{pace} {_duration(elapsed)}\x1b[K")
            if finished:
                stream.write("\n")
                state["stage"] = None
        else:
            tenth = 10 * done // total if total else done // 100
            if tenth > state["tenth"] or finished or now - state["drawn"] >= LOG_EVERY_S:
                state["tenth"], state["drawn"] = tenth, now
                stream.write(f"{line}{pace} {_duration(elapsed)}\n")
            if finished:
                state["stage"] = None
        stream.flush()

    return report


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
