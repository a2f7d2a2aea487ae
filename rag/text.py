"""The one policy for text that is not valid Unicode, applied at every door.

Questions, filters and conversation history arrive from argv (undecodable bytes become lone
surrogates there), stdin, batch files, JSON bodies (``"\\ud800"`` is valid JSON) and MCP
arguments. None of that may reach a tokenizer or a JSON encoder as it is: those fail with a
``TypeError`` or ``UnicodeEncodeError`` deep inside. Instead, every undecodable byte and every lone
surrogate becomes U+FFFD (the replacement character) here, once, and the text goes on; a
surrogate pair is joined into the character it stands for.
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "clean_json", "clean_json_line", "REPLACEMENT"]

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # "\ud800" written in JSON


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (and surrogate-escaped bytes) replaced by U+FFFD."""
    if not _SURROGATE.search(text):
        return text  # the common case: nothing to do
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")



def clean_json(value):
    """A parsed JSON value with every string (keys too) passed through ``clean_text``."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    if isinstance(value, dict):
        return {clean_json(k): clean_json(v) for k, v in value.items()}
    return value


def clean_json_line(line: str) -> str:
    """One line of JSON whose strings may hold a lone surrogate escape, rewritten without it.

    Strict JSON parsers (pydantic's, which the MCP SDK uses) reject ``"\\ud800"``; Python's
    accepts it, so the line is read here, cleaned and written back. Other lines pass unchanged.
    """
    if not _SURROGATE_ESCAPE.search(line):
        return line
    import json

    try:
        value = json.loads(line)
    except ValueError:
        return line
    return json.dumps(clean_json(value)) + ("\n" if line.endswith("\n") else "")
