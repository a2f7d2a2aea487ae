"""What every door (the Python API, the CLI, HTTP, MCP) checks of what it is sent: a question, a
time span, a conversation's history. Each bad input gets one ``InputError`` that says what is wrong
and what to do."""

from __future__ import annotations

from typing import Sequence

from .errors import InputError
from .text import clean_text

MAX_QUESTION_CHARS = 2000


def check_question(question: str) -> str:
    """The question, stripped, with invalid Unicode replaced (``rag.text``); or an InputError."""
    if isinstance(question, str):
        question = clean_text(question)
    if not isinstance(question, str) or not question.strip():
        raise InputError("the question is empty; ask something about the interview, "
                         "e.g. \"How did Runway start?\"")
    if len(question) > MAX_QUESTION_CHARS:
        raise InputError(f"the question is {len(question)} characters long; "
                         f"keep it under {MAX_QUESTION_CHARS}")
    return question.strip()


def check_span(start_s: float | None, end_s: float | None) -> None:
    """Time filters are seconds into the episode; a start after the end is refused, not searched
    (it matches nothing)."""
    import math

    for name, value in (("start", start_s), ("end", end_s)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value < 0:
            raise InputError(f"the {name} time must be seconds into the episode (0 or more) or "
                             f"MM:SS, not {value!r}")
    if start_s is not None and end_s is not None and start_s > end_s:
        from .timecode import format_time

        raise InputError(f"the start ({format_time(start_s)}) is after the end "
                         f"({format_time(end_s)}); swap them, or leave one out")


def check_history(history) -> list[tuple[str, str]]:
    """Earlier turns of a conversation, oldest first: (question, answer) pairs, or
    ``{"question", "answer"}`` objects as JSON clients send them; two strings each, with invalid
    Unicode replaced. Every door (Python, HTTP ``/ask``, MCP ``ask_interview``) reads history here."""
    if history is None:
        return []
    if isinstance(history, (str, bytes, dict)) or not isinstance(history, Sequence):
        raise InputError("history must be a list of [question, answer] pairs")
    turns = []
    for i, turn in enumerate(history):
        if isinstance(turn, dict):
            q, a = turn.get("question"), turn.get("answer")
        elif isinstance(turn, (tuple, list)) and len(turn) == 2:
            q, a = turn
        else:
            q = a = None
        if not (isinstance(q, str) and isinstance(a, str)):
            raise InputError(f"history[{i}] must be [question, answer] or "
                             "{\"question\": ..., \"answer\": ...} with two strings")
        turns.append((clean_text(q), clean_text(a)))
    return turns
