"""How every surface starts: the assistant for ``--index`` and ``--backend``, its build progress
printed while the shipped index is (re)built, and its notice ("no chat model configured ...")
shown once. ``rag ask``/``search``, ``rag chat``, ``rag serve`` and ``rag mcp`` all load here."""

from __future__ import annotations

import sys

__all__ = ["load_assistant"]


def load_assistant(args, who: str = "", *, backend: str | None = None, stream=None, notice: bool = True):
    """``args.index`` loaded with ``backend`` (else ``args.backend``, else auto). Progress and the
    notice go to ``stream`` (stderr), the notice as ``"{who}: note: ..."``; ``notice=False`` when
    the surface shows it with each answer instead (the CLI: it travels in the answer's notes)."""
    from .api import Assistant
    from .progress import progress_printer

    stream = stream or sys.stderr
    stream.flush()
    assistant = Assistant.load(getattr(args, "index", None),
                               backend=backend or getattr(args, "backend", None) or "auto",
                               progress=progress_printer(stream))
    if notice and assistant.notice:
        print(f"{who + ': ' if who else ''}note: {assistant.notice}", file=stream)
    return assistant
