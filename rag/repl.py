"""`rag chat`: an interactive conversation in the terminal, a thin loop over ``ChatSession``.

    ChatREPL(assistant, input_fn, out).run()

``input_fn(prompt)`` returns one line, raises EOFError to end the session and KeyboardInterrupt
to abandon the line. With a terminal it is prompt_toolkit (line editing, history under the user's
cache folder); otherwise lines are read from stdin, so the chat can be scripted:

    printf 'How did Runway start?\\n/sources\\n/quit\\n' | rag chat
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Callable, TextIO

from .errors import RagError
from .text import clean_text

PROMPT = "> "
HELP = """\
Ask anything about the interview; follow-ups may lean on the previous answers.
  /sources   the full passages behind the last answer (times, chapters, speakers)
  /reset     forget the conversation so far
  /help      this help
  /quit      leave (also /exit or Ctrl-D)
Ctrl-C stops an answer that is still being written; Ctrl-C at the prompt clears the line."""

InputFn = Callable[[str], str]


class ChatREPL:
    """The read-answer loop. Every answer goes through the ChatSession, which condenses follow-ups."""

    def __init__(self, assistant, input_fn: InputFn, out: TextIO | None = None,
                 err: TextIO | None = None, *, k: int = 5, live: bool | None = None):
        self.assistant = assistant
        self.session = assistant.chat()
        self.input_fn = input_fn
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.k = k
        # live (a terminal): text deltas are shown as they arrive, then redrawn as the checked
        # text where it differs; otherwise (a pipe) only the checked answer is written
        self.live = _isatty(self.out) if live is None else live

    # --- the loop ----------------------------------------------------------------------------

    def run(self) -> int:
        self._say(f"Ask about {self._title()} ({self.assistant.backend} answers). "
                  "/help for commands, Ctrl-D to leave.")
        while True:
            try:
                line = self.input_fn(PROMPT)
            except EOFError:
                self._say("")
                return 0
            except KeyboardInterrupt:  # Ctrl-C at the prompt clears the line, it does not leave
                self._say("")
                continue
            if not self.handle(line):
                return 0

    def handle(self, line: str) -> bool:
        """Act on one line; False means leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            return self.command(line)
        self.answer(line)
        return True

    def command(self, line: str) -> bool:
        name = line.split()[0].lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/help":
            self._say(HELP)
        elif name == "/reset":
            self.session.reset()
            self._say("(conversation cleared)")
        elif name == "/sources":
            self.sources()
        else:
            self._say(f"unknown command {name}; /help lists the commands")
        return True

    # --- answers -----------------------------------------------------------------------------

    def answer(self, question: str) -> None:
        from dataclasses import replace

        from .cli import print_answer
        from .types import Answer

        streamed: list[str] = []
        final = None
        stream = self.session.stream(question, k=self.k)
        try:
            for event in stream:
                if isinstance(event, Answer):
                    final = event
                elif self.live:
                    streamed.append(event)
                    self.out.write(event)
                    self.out.flush()
        except KeyboardInterrupt:
            stream.close()
            self._say("\n(stopped)" if streamed else "(stopped)")
            return
        except RagError as e:
            stream.close()
            self._error(streamed, str(e))
            return
        except Exception as e:  # noqa: BLE001 - one line, and the conversation goes on
            stream.close()
            if os.environ.get("RAG_DEBUG"):
                raise
            self._error(streamed, f"unexpected error: {type(e).__name__}: {e}")
            return
        if final is None:
            return
        if self.assistant.notice:  # said once when the chat started, not after every answer
            final = replace(final, notes=tuple(n for n in final.notes if n != self.assistant.notice))
        self._settle(final.text, "".join(streamed))
        self.out.flush()
        print_answer(final, stream=self.out, streamed=True, err=self.err,
                     show_episode=len(self.session.assistant.transcripts) > 1)
        self._say("")

    def _settle(self, text: str, draft: str) -> None:
        """End the streamed draft; where the checked text differs (a chat model's passage labels
        become [MM:SS]), redraw it as the checked text (below it, if it ran off the screen)."""
        if draft == text:
            self.out.write("\n")
            return
        if not draft:
            self._say(text)
            return
        lines = _screen_lines(draft)
        rows = shutil.get_terminal_size((80, 24)).lines
        if self.live and lines < rows:
            # up to the draft's first line, clear to the end of the screen, write the final text
            self.out.write(("\r\x1b[%dA" % (lines - 1) if lines > 1 else "\r") + "\x1b[J")
            self._say(text)
        else:
            self._say("\n\n" + text)

    def sources(self) -> None:
        from .cli import _passage_lines

        last = self.session.last
        if last is None:
            self._say("(no answer yet)")
            return
        if not last.hits:
            self._say("(the last answer used no passage)")
            return
        width = max(min(shutil.get_terminal_size((100, 24)).columns, 100) - 1, 40)
        cited = {c.passage_id for c in last.citations}
        for n, hit in enumerate(last.hits, 1):
            mark = "cited" if hit.chunk.id in cited else "retrieved"
            self._say(f"{n}. ({mark})")
            for line in _passage_lines([hit], width=width, full=True,
                                       show_episode=len(self.session.assistant.transcripts) > 1):
                self._say(line)
            self._say("")

    # --- output ------------------------------------------------------------------------------

    def _error(self, streamed: list[str], message: str) -> None:
        if streamed:
            self._say("")
        print(f"error: {message}", file=self.err)
        self.err.flush()

    def _say(self, text: str) -> None:
        print(text, file=self.out)
        self.out.flush()

    def _title(self) -> str:
        titles = [t.get("episode", {}).get("title") or t.get("episode", {}).get("id")
                  for t in self.assistant.transcripts if isinstance(t, dict)]
        titles = [t for t in titles if t]
        return titles[0] if len(titles) == 1 else f"the index {self.assistant.name!r}"


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _screen_lines(text: str) -> int:
    columns = max(shutil.get_terminal_size((80, 24)).columns, 1)
    return sum(max(1, -(-len(line) // columns)) for line in text.split("\n"))


# --- reading lines ---------------------------------------------------------------------------

def history_path() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rag" / "history"


def terminal_input(history: Path | None = None, **session_options) -> InputFn:
    """prompt_toolkit line editing with a persistent history (in memory when it can't be written).

    ``session_options`` go to PromptSession (tests pass a pipe input and a dummy output)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    store = InMemoryHistory()
    path = history or history_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
        with open(path, "a", encoding="utf-8"):
            pass
        store = FileHistory(str(path))
    except OSError:
        pass
    session = PromptSession(history=store, **session_options)
    return lambda prompt: session.prompt(prompt)


def stream_input(stdin: TextIO, echo: TextIO | None = None) -> InputFn:
    """Lines from a pipe; each is echoed after the prompt so a transcript of the chat reads well."""

    def read(prompt: str) -> str:
        line = clean_text(stdin.readline())  # undecodable bytes: U+FFFD, as at every door
        if not line:
            raise EOFError
        if echo is not None:
            echo.write(prompt + line if line.endswith("\n") else prompt + line + "\n")
            echo.flush()
        return line.rstrip("\r\n")

    return read


def run(args) -> int:
    from .surface import load_assistant

    assistant = load_assistant(args)
    if _isatty(sys.stdin) and _isatty(sys.stdout):
        input_fn = terminal_input()
    else:
        if hasattr(sys.stdin, "reconfigure"):
            sys.stdin.reconfigure(errors="replace")  # a byte that is not UTF-8 is U+FFFD, no crash
        input_fn = stream_input(sys.stdin, echo=sys.stdout)
    return ChatREPL(assistant, input_fn, sys.stdout, sys.stderr, k=getattr(args, "k", 5)).run()
