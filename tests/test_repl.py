"""`rag chat` driven through fake stdin, on a tmp index built with the fake embedder."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from rag import Assistant, ChatModelError, Config, FakeChatModel, FakeEmbedder
from rag.repl import ChatREPL, stream_input, terminal_input

TIME = re.compile(r"\[\d{2}:\d{2}(?::\d{2})?\]")
ANSWERABLE = "What makes video generation models useful?"


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return Config(index_dir=tmp_path_factory.mktemp("indexes"))


@pytest.fixture()
def assistant(config):
    return Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")


def drive(assistant, *lines, **options):
    """Run the REPL over these stdin lines; returns the REPL, stdout text and stderr text."""
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO("".join(line + "\n" for line in lines))
    repl = ChatREPL(assistant, stream_input(stdin, echo=out), out, err, **options)
    assert repl.run() == 0
    return repl, out.getvalue(), err.getvalue()


def scripted(*items):
    """An input function replaying strings and raising exceptions (KeyboardInterrupt, EOFError)."""
    queue = list(items)

    def read(prompt: str) -> str:
        if not queue:
            raise EOFError
        item = queue.pop(0)
        if isinstance(item, BaseException) or (isinstance(item, type) and issubclass(item, BaseException)):
            raise item
        return item

    return read


def test_answer_has_citations_and_sources_block(assistant):
    repl, out, _ = drive(assistant, ANSWERABLE, "/quit")
    answer = repl.session.last
    assert answer is not None and not answer.refused and answer.citations
    assert answer.text in out
    assert TIME.search(out.split("Sources:")[0])
    sources = out.split("Sources:")[1]
    first = answer.citations[0]
    assert f"[{first.start}]" in sources and f" {first.chapter} · {first.speaker}" in sources
    assert f"> {ANSWERABLE}" in out  # the piped question is echoed after the prompt


def test_sources_prints_full_passages(assistant):
    repl, out, _ = drive(assistant, ANSWERABLE, "/sources")
    after = out.split("> /sources")[1]
    for hit in repl.session.last.hits:
        assert f"[{hit.chunk.start}] {hit.chunk.chapter}" in after
        # full text: the passage's last words are there, not an ellipsis
        assert hit.chunk.text.split()[-1] in after
    assert "(cited)" in after


def test_sources_before_any_answer(assistant):
    _, out, _ = drive(assistant, "/sources")
    assert "(no answer yet)" in out


def test_follow_up_is_condensed_and_reset_clears(assistant):
    repl, out, _ = drive(assistant, ANSWERABLE, "And why?")
    history = repl.session.history
    assert len(history) == 2
    assert history[0][0] == ANSWERABLE
    assert history[1][0] == "And why?"                  # kept as asked, as an HTTP client's messages are
    assert repl.session.last.question == "And why?"
    assert repl.session.last.standalone_question.startswith("And why?") and \
        ANSWERABLE in repl.session.last.standalone_question

    repl, out, _ = drive(assistant, ANSWERABLE, "/reset", "And why?")
    assert "(conversation cleared)" in out
    assert [q for q, _ in repl.session.history] == ["And why?"]


def test_help_quit_exit_and_unknown_commands(assistant):
    repl, out, _ = drive(assistant, "/help", "/bogus", "/exit", ANSWERABLE)
    assert "/sources" in out and "/reset" in out and "/quit" in out
    assert "unknown command /bogus" in out
    assert repl.session.last is None  # /exit left before the question
    _, out, _ = drive(assistant, "/quit", ANSWERABLE)
    assert "Sources:" not in out


def test_empty_lines_are_ignored_and_eof_ends(assistant):
    repl, out, err = drive(assistant, "", "   ", "\t")
    assert repl.session.last is None and err == ""
    assert out.count("> ") == 3


def test_ctrl_c_at_prompt_does_not_leave(assistant):
    out = io.StringIO()
    repl = ChatREPL(assistant, scripted(KeyboardInterrupt(), ANSWERABLE, EOFError()), out, io.StringIO())
    assert repl.run() == 0
    assert repl.session.last is not None


class InterruptedModel(FakeChatModel):
    """Streams a few words, then the user presses Ctrl-C (once)."""

    def __init__(self):
        super().__init__()
        self.interrupted = False

    def stream(self, messages, **kw):
        if self.interrupted:
            yield from super().stream(messages, **kw)
            return
        self.interrupted = True
        self.calls.append(messages)
        yield "Runway started "
        yield "as an art "
        raise KeyboardInterrupt


def test_ctrl_c_mid_answer_stops_it_and_the_session_goes_on(config):
    assistant = Assistant.load(config=config, embedder=FakeEmbedder(), chat_model=InterruptedModel())
    repl, out, err = drive(assistant, ANSWERABLE, "/sources", "What did he study?", live=True)
    assert "Runway started as an art\n(stopped)" in out
    assert "(no answer yet)" in out  # the stopped answer did not enter the conversation
    assert [q for q, _ in repl.session.history] == ["What did he study?"]  # lock released too
    assert "Sources:" in out.split("(stopped)")[1]


def test_chat_model_labels_are_replaced_by_times(config):
    model = FakeChatModel()
    assistant = Assistant.load(config=config, embedder=FakeEmbedder(), chat_model=model)
    assert assistant.backend == "openai"
    # on a terminal the answer streams already checked: times, never our [P1] labels, no redraw
    repl, out, _ = drive(assistant, ANSWERABLE, live=True)
    final = repl.session.last
    assert TIME.search(final.text) and "[P1]" not in final.text
    assert "[P1]" not in out and "\x1b[J" not in out and out.count(final.text) == 1
    # through a pipe only the checked answer is written
    repl, out, _ = drive(assistant, ANSWERABLE, live=False)
    assert "[P1]" not in out and "\x1b" not in out
    assert repl.session.last.text in out


class BrokenAnswerer:
    name = "broken"

    def __init__(self, error):
        self.error = error

    def stream(self, question, hits):
        yield "partial "
        raise self.error


@pytest.mark.parametrize("error, expected", [
    (ChatModelError("the chat server is unreachable"), "error: the chat server is unreachable"),
    (RuntimeError("boom"), "error: unexpected error: RuntimeError: boom"),
])
def test_errors_print_one_line_and_the_session_goes_on(config, monkeypatch, error, expected):
    monkeypatch.delenv("RAG_DEBUG", raising=False)
    assistant = Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")
    good = assistant.answerer
    assistant.answerer = BrokenAnswerer(error)
    calls = iter([assistant.answerer, good])

    def question(prompt, _read=scripted(ANSWERABLE, ANSWERABLE)):
        assistant.answerer = next(calls, good)
        return _read(prompt)

    out, err = io.StringIO(), io.StringIO()
    repl = ChatREPL(assistant, question, out, err)
    assert repl.run() == 0
    assert err.getvalue().strip().splitlines() == [expected]
    assert len(repl.session.history) == 1  # the second question was answered


def test_input_error_keeps_the_session(assistant):
    repl, out, err = drive(assistant, "x" * 2500, ANSWERABLE)
    assert err.startswith("error: the question is 2500 characters long")
    assert len(err.strip().splitlines()) == 1
    assert repl.session.last.question == ANSWERABLE


def test_terminal_input_history_and_fail_soft(tmp_path):
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    history = tmp_path / "rag" / "history"
    with create_pipe_input() as pipe:
        read = terminal_input(history, input=pipe, output=DummyOutput())
        pipe.send_text("How did Runway start?\r")
        assert read("> ") == "How did Runway start?"
    assert "How did Runway start?" in history.read_text()
    blocked = tmp_path / "file"
    blocked.write_text("")
    with create_pipe_input() as pipe:  # the history folder cannot be created: still works
        read = terminal_input(blocked / "history", input=pipe, output=DummyOutput())
        pipe.send_text("hi\r")
        assert read("> ") == "hi"


def test_rag_chat_process_over_piped_stdin(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    env.update(RAG_INDEX_DIR=str(tmp_path), RAG_EMBED_MODEL="fake")
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "chat"], env=env, text=True,
                          input=f"{ANSWERABLE}\n/sources\n/quit\n", capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("Ask about")
    assert f"> {ANSWERABLE}" in out and "Sources:" in out and TIME.search(out)
    assert "(cited)" in out.split("> /sources")[1]
    assert "Traceback" not in proc.stderr


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32", reason="needs a POSIX pty")
def test_rag_chat_in_a_real_terminal(tmp_path):
    """`rag chat` on a pseudo-terminal: prompt_toolkit's line editor, not the piped-stdin path."""
    import pty
    import select
    import time

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    env.update(RAG_INDEX_DIR=str(tmp_path), RAG_EMBED_MODEL="fake", TERM="xterm")
    pid, fd = pty.fork()
    if pid == 0:  # the child: the CLI on the pty
        os.execve(sys.executable, [sys.executable, "-m", "rag.cli", "chat"], env)
    seen = b""

    def read_until(pattern: bytes, timeout: float = 60) -> bool:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # the child closed the terminal
                    return pattern in seen
                seen += data
                if b"\x1b[6n" in data:  # answer the cursor-position query, as a terminal does
                    os.write(fd, b"\x1b[1;1R")
                if pattern in seen:
                    return True
        return False

    try:
        assert read_until(b"/help for commands"), seen[-500:]
        os.write(fd, ANSWERABLE.encode() + b"\r")
        assert read_until(b"Sources:"), seen[-500:]
        assert TIME.search(seen.decode(errors="replace"))
        assert b"\x1b[?2004h" in seen  # prompt_toolkit's editor drew the prompt (bracketed paste on)
        os.write(fd, b"/quit\r")
        read_until(b"never printed", timeout=10)  # drain until the child exits
        deadline = time.monotonic() + 10
        while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert status[0] == pid and os.waitstatus_to_exitcode(status[1]) == 0
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
