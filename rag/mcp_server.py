"""`rag mcp`: the interview as Model Context Protocol tools, served over stdio.

    search_transcript(query, k=5, chapter=None, speaker=None, start_s=None, end_s=None, show=None, episode=None,
                      per_episode=None)
    ask_interview(question, history=None, k=5, show=None, episode=None, per_episode=None)
    list_episodes(show=None)
    list_chapters()

Stdout carries the protocol and nothing else: the index is loaded (and built, if needed) while
stdout points at stderr, and the SDK's stdio transport keeps it diverted while it serves. A
RagError becomes a tool error result carrying its message; the server keeps running.

Register it with an MCP client:  {"mcpServers": {"rag": {"command": "rag", "args": ["mcp"]}}}
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

INSTRUCTIONS = (
    "Answers questions about one podcast interview: Practical AI episode #260, host Chris Benson "
    "with Anastasis Germanidis, co-founder and CTO of Runway (AI video generation). Use "
    "ask_interview for a short answer citing [MM:SS] timestamps, search_transcript for the "
    "passages themselves, list_chapters for the episode's outline and list_episodes for the "
    "episodes an index holds (search_transcript takes show and episode filters)."
)


def build_server(assistant):
    """An MCPServer whose tools call ``assistant``; tools run in worker threads."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from .inputs import check_history
    from .errors import RagError
    from .text import clean_text
    from .threads import ModelThreads, calls_model

    server = MCPServer("rag", instructions=INSTRUCTIONS, log_level="WARNING")

    # Answers that wait on a chat model get their own threads (``threads.ModelThreads``): a model
    # server that hangs (each answer waits up to its deadline) cannot take the threads that serve
    # searches.
    threads = ModelThreads()

    async def call(fn, *args, _uses_model=False, **kwargs):
        try:
            return await threads.run(lambda: fn(*args, **kwargs), _uses_model)
        except RagError as e:
            raise ToolError(str(e)) from e

    @server.tool()
    async def search_transcript(query: str, k: int = 5, chapter: str | None = None,
                                speaker: str | None = None, start_s: float | None = None,
                                end_s: float | None = None, show: str | None = None,
                                episode: str | None = None, per_episode: int | None = None) -> dict[str, Any]:
        """Find the transcript passages that best match a query, with their times, chapters and
        speakers (and show, episode and page link). Optional filters: chapter (title or part of
        it), speaker (e.g. "Chris Benson"), start_s / end_s (seconds into the episode), show (e.g.
        "Practical AI"), episode (an id from list_episodes, e.g. "practical-ai-260") and per_episode
        (at most that many passages of one episode, 1-100)."""
        hits = await call(assistant.search, query, k=k, chapter=chapter, speaker=speaker,
                          start_s=start_s, end_s=end_s, show=show, episode=episode,
                          per_episode=per_episode)
        return {"query": clean_text(query), "passages": [h.to_json() for h in hits]}

    @server.tool()
    async def ask_interview(question: str, history: list[Any] | None = None, k: int = 5,
                            show: str | None = None, episode: str | None = None,
                            per_episode: int | None = None) -> dict[str, Any]:
        """Answer a question about the interview from its transcript. The answer cites [MM:SS]
        timestamps; "citations" map each to its chapter, speaker and quote, and "refused" is true
        when the interview does not cover the question. Optional: history, the conversation's
        earlier turns, oldest first, each [question, answer] with the answer as ask_interview
        returned it: a follow-up ("And why?", "What about Gen-1?") is then read against the last
        answer, and a question about something new is answered as if asked alone; k, show, episode
        and per_episode as for search_transcript."""
        turns = await call(check_history, history)
        answer = await call(assistant.ask, question, history=turns, k=k, show=show, episode=episode,
                            per_episode=per_episode, _uses_model=calls_model(assistant, None, turns))
        return answer.to_json()

    @server.tool()
    async def list_episodes(show: str | None = None) -> dict[str, Any]:
        """The episodes this index holds: id, show, number, title, page link, hosts, guests and
        duration. Optional: show, to list one show's episodes."""
        return {"episodes": await call(assistant.episodes, show=show)}

    @server.tool()
    async def list_chapters() -> dict[str, Any]:
        """The episode's chapters in order, with start times."""
        return {"chapters": [c.to_json() for c in assistant.chapters]}

    return server


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send whatever is written to stdout (Python prints and C-level writes) to stderr."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real fd 1: Python-level redirection is all there is to do
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(args) -> int:
    from .surface import load_assistant

    with stdout_to_stderr():
        assistant = load_assistant(args, "rag mcp")
        server = build_server(assistant)
    print(f"rag mcp: serving index {assistant.name!r} ({assistant.backend} answers) on stdio",
          file=sys.stderr)
    import anyio

    anyio.run(serve_stdio, server)
    return 0


class _CleanLines:
    """stdin for the SDK's transport: undecodable bytes and JSON's lone surrogate escapes become
    U+FFFD (``rag.text``). The SDK's strict parser would drop such a request without a reply, and
    the client would wait forever."""

    def __init__(self, binary):
        import io

        self._text = io.TextIOWrapper(binary, encoding="utf-8", errors="replace")

    def readline(self, *_):
        from .text import clean_json_line

        return clean_json_line(self._text.readline())


async def serve_stdio(server) -> None:
    """``server.run("stdio")``, reading requests through ``_CleanLines``."""
    import anyio
    from mcp.server.stdio import stdio_server

    stdin = anyio.wrap_file(_CleanLines(sys.stdin.buffer))
    async with stdio_server(stdin=stdin) as (read_stream, write_stream):
        lowlevel = server._lowlevel_server
        await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
