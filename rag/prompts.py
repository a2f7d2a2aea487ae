"""Prompt templates as files, checked for placeholders.

Each template under ``prompts/`` holds a system part, a ``---user---`` line, and a user part.
Placeholders are ``{name}``; literal braces are doubled (``{{`` ``}}``), as in ``str.format``.
Loading checks the placeholders against the ones the code will fill (``EXPECTED``), and
rendering checks that every placeholder gets a value and no value goes unused, so a renamed
placeholder fails loudly instead of sending a prompt with ``{passages}`` left in it.

Templates are found in the installed package (``rag/_prompts/``, mapped from ``prompts/`` by the
wheel build) or, in a source checkout, in ``<repo>/prompts/``.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import RagError

__all__ = ["Prompt", "PromptError", "load_prompt", "prompt_dirs", "EXPECTED", "USER_SEPARATOR"]

USER_SEPARATOR = "---user---"

# The placeholders the code fills for each prompt it ships.
EXPECTED: dict[str, frozenset[str]] = {
    "answer": frozenset({"passages", "question"}),
    "condense": frozenset({"history", "question"}),
    "judge": frozenset({"question", "reference", "passages", "answer"}),
    "rewrite": frozenset({"question"}),
    "readers": frozenset({"episode", "transcript"}),
}


class PromptError(RagError, ValueError):
    """A prompt file that is missing or malformed, or rendered with the wrong values."""


def placeholders(template: str) -> frozenset[str]:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as err:  # a lone "{" or "}"
        raise PromptError(f"bad brace in template ({err}); write literal braces as {{{{ }}}}")
    if "" in fields:
        raise PromptError("a template uses a positional {} placeholder; name it")
    return frozenset(fields)


@dataclass(frozen=True)
class Prompt:
    name: str
    system: str
    user: str
    path: str = ""

    @property
    def placeholders(self) -> frozenset[str]:
        return placeholders(self.system) | placeholders(self.user)

    def render(self, **values: object) -> list[dict]:
        """Fill the placeholders; return chat messages ``[system, user]``."""
        wanted = self.placeholders
        missing = sorted(wanted - values.keys())
        unknown = sorted(values.keys() - wanted)
        if missing or unknown:
            parts = []
            if missing:
                parts.append(f"missing values for {', '.join(missing)}")
            if unknown:
                parts.append(f"unknown placeholders {', '.join(unknown)}")
            raise PromptError(f"prompt {self.name!r}: {'; '.join(parts)}")
        messages = []
        if self.system:
            messages.append({"role": "system", "content": self.system.format(**values)})
        messages.append({"role": "user", "content": self.user.format(**values)})
        return messages

    @classmethod
    def parse(cls, name: str, text: str, path: str = "",
              expected: frozenset[str] | None = None) -> "Prompt":
        system, sep, user = text.partition(f"\n{USER_SEPARATOR}\n")
        if not sep:
            raise PromptError(f"prompt {name!r} ({path or 'text'}) has no '{USER_SEPARATOR}' line "
                              "separating the system part from the user part")
        prompt = cls(name=name, system=system.strip(), user=user.strip(), path=path)
        found = prompt.placeholders  # also raises on malformed braces
        if expected is not None and found != expected:
            parts = []
            if found - expected:
                parts.append(f"unknown placeholders {', '.join(sorted(found - expected))}")
            if expected - found:
                parts.append(f"missing placeholders {', '.join(sorted(expected - found))}")
            raise PromptError(f"prompt {name!r} ({path}): {'; '.join(parts)} "
                              f"(expected {', '.join(sorted(expected))})")
        return prompt


def prompt_dirs() -> list[Path]:
    """Where templates are looked for: the installed package first, then the source checkout."""
    here = Path(__file__).resolve().parent
    return [d for d in (here / "_prompts", here.parent / "prompts") if d.is_dir()]


@lru_cache(maxsize=None)
def _load_cached(name: str) -> Prompt:
    return load_prompt(name, directory=None, _cached=False)


def load_prompt(name: str, directory: str | Path | None = None, *, _cached: bool = True) -> Prompt:
    """Load ``<name>.md`` and check its placeholders. Cached per process unless ``directory``."""
    if directory is None and _cached:
        return _load_cached(name)
    dirs = [Path(directory)] if directory is not None else prompt_dirs()
    for d in dirs:
        path = d / f"{name}.md"
        if path.is_file():
            text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
            return Prompt.parse(name, text, str(path), EXPECTED.get(name))
    where = ", ".join(str(d) for d in dirs) or "rag/_prompts or <repo>/prompts (neither exists)"
    raise PromptError(f"no prompt named {name!r} in {where}")
