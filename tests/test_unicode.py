"""Issue 9.2: text that is not valid Unicode, at every door. One policy (``rag.text``): every
undecodable byte and lone surrogate becomes U+FFFD and the question is answered; never a
TypeError, a 500, a traceback or a request the MCP server leaves without a reply.

The doors are driven for real: the CLI and `rag chat` as subprocesses (argv and stdin as bytes),
`rag serve` over HTTP on 127.0.0.1 (raw JSON bytes), `rag mcp` over its stdio pipes.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys

import httpx
import pytest

from rag.api import Assistant, build_index
from rag.inputs import check_question
from rag.config import Config
from rag.embedding import FakeEmbedder
from rag.errors import InputError
from rag.text import clean_json_line, clean_text

BAD_ARG = b"What is Gen-2\xff?"               # argv: not UTF-8
LONE = "What is Gen-2\ud800?"                # JSON "\ud800", or a str built in Python
LONE_JSON = '"What is Gen-2\\ud800?"'         # the same, as JSON text


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    index_dir = tmp_path_factory.mktemp("indexes")
    build_index(None, config=Config(index_dir=index_dir), embedder=FakeEmbedder())
    return index_dir


@pytest.fixture(scope="module")
def assistant(index_dir):
    return Assistant.load(config=Config(index_dir=index_dir), embedder=FakeEmbedder(),
                          backend="extractive")


def _env(index_dir) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    env.update(RAG_INDEX_DIR=str(index_dir), RAG_EMBED_MODEL="fake")
    return env


def _encodable(obj) -> None:
    json.dumps(obj, ensure_ascii=False).encode("utf-8")  # raises on a lone surrogate


# --- the policy ------------------------------------------------------------------------------

def test_clean_text_replaces_lone_surrogates_and_keeps_pairs():
    assert clean_text("a\udcffb") == "a\ufffdb"            # a surrogate-escaped byte from argv
    assert clean_text("\ud800") == "\ufffd"
    assert clean_text("\ud83d\ude00!") == "\U0001F600!"     # a pair is the character it encodes
    assert clean_text("plain é") == "plain é"


def test_clean_json_line_rewrites_only_lone_surrogate_escapes():
    assert json.loads(clean_json_line('{"q": ' + LONE_JSON + '}\n')) == {"q": "What is Gen-2\ufffd?"}
    line = '{"q": "fine \\u00e9"}\n'
    assert clean_json_line(line) == line
    assert clean_json_line('{"broken": "\\ud800\n') == '{"broken": "\\ud800\n'  # not JSON: unchanged


# --- Python API ------------------------------------------------------------------------------

def test_api_answers_a_question_with_a_lone_surrogate(assistant):
    answer = assistant.ask(LONE)
    assert answer.question == "What is Gen-2\ufffd?"
    _encodable(answer.to_json())
    hits = assistant.search(LONE, k=2, chapter="Runway\udcff")
    assert isinstance(hits, list)
    with pytest.raises(InputError) as err:   # a speaker no one is, said in a clean message
        assistant.search(LONE, k=2, speaker="\ud800")
    assert str(err.value).startswith("no speaker matches '\ufffd'")
    str(err.value).encode("utf-8")
    session = assistant.chat()
    session.ask("How did Runway start?")
    _encodable(session.ask("And then\udcff?").to_json())


def test_api_history_must_be_pairs_of_strings(assistant):
    with pytest.raises(InputError, match="history"):
        assistant.ask("And why?", history=[("q", 3)])
    answer = assistant.ask("And why?", history=[("How did Runway start\ud800?", "It \udcffstarted.")])
    _encodable(answer.to_json())


def test_only_surrogates_is_an_empty_question_error():
    assert check_question("  \ud800 ") == "\ufffd"       # replaced, so not empty: it is answered
    with pytest.raises(InputError):
        check_question("   ")


# --- CLI and `rag chat` ----------------------------------------------------------------------

def _rag(index_dir, *args: bytes | str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable.encode(), b"-m", b"rag.cli"] + [a if isinstance(a, bytes) else a.encode()
                                                         for a in args]
    return subprocess.run(argv, input=stdin, capture_output=True, env=_env(index_dir), timeout=120)


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_cli_ask_with_an_invalid_utf8_argument(index_dir, extra):
    proc = _rag(index_dir, "ask", BAD_ARG, *extra)
    assert proc.returncode == 0, proc.stderr
    assert b"unexpected error" not in proc.stderr and b"Traceback" not in proc.stderr
    if extra:
        assert json.loads(proc.stdout)["question"] == "What is Gen-2\ufffd?"


def test_cli_search_json_echoes_the_replaced_query(index_dir):
    proc = _rag(index_dir, "search", BAD_ARG, "--json", "--k", "1")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["query"] == "What is Gen-2\ufffd?"


@pytest.mark.parametrize("command", ["ask", "search"])
def test_cli_batch_file_with_an_invalid_byte(index_dir, tmp_path, command):
    batch = tmp_path / "questions.txt"
    batch.write_bytes(BAD_ARG + b"\n" + b'{"id": "x\\udcff", "question": ' + LONE_JSON.encode() + b"}\n")
    proc = _rag(index_dir, command, "--batch", str(batch))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert [r["id"] for r in rows] == [1, "x\ufffd"]
    key = "question" if command == "ask" else "query"
    assert [r[key] for r in rows] == ["What is Gen-2\ufffd?"] * 2


def test_chat_stdin_with_an_invalid_byte(index_dir):
    proc = _rag(index_dir, "chat", stdin=BAD_ARG + b"\n/quit\n")
    assert proc.returncode == 0, proc.stderr
    assert b"error" not in proc.stderr, proc.stderr
    assert "What is Gen-2\ufffd?" in proc.stdout.decode()   # echoed, then answered
    assert b"Sources:" in proc.stdout


# --- HTTP ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def url(assistant):
    pytest.importorskip("fastapi")
    from rag.server import BackgroundServer, create_app

    with BackgroundServer(create_app(assistant)) as url:
        yield url


def _post(url: str, path: str, body: str) -> httpx.Response:
    return httpx.post(url + path, content=body.encode(), timeout=30,
                      headers={"content-type": "application/json"})


def test_http_ask_and_search_with_a_lone_surrogate(url):
    r = _post(url, "/ask", '{"question": ' + LONE_JSON + ', "history": [["a\\udc80", "b"]]}')
    assert r.status_code == 200, r.text
    assert r.json()["question"] == "What is Gen-2\ufffd?"
    r = _post(url, "/search", '{"query": ' + LONE_JSON + ', "chapter": "\\ud800", "k": 2}')
    assert r.status_code == 200, r.text
    assert r.json()["query"] == "What is Gen-2\ufffd?"


@pytest.mark.parametrize("stream", [False, True])
def test_http_chat_completions_with_a_lone_surrogate(url, stream):
    body = ('{"stream": %s, "stream_options": {"include_usage": true}, "messages": '
            '[{"role": "user", "content": "hi\\udfff"}, {"role": "assistant", "content": "\\ud800"},'
            ' {"role": "user", "content": [{"type": "text", "text": %s}]}]}'
            % (json.dumps(stream), LONE_JSON))
    r = _post(url, "/v1/chat/completions", body)
    assert r.status_code == 200, r.text
    if stream:
        events = [e[6:] for e in r.text.split("\n\n") if e.strip()]
        assert events[-1] == "[DONE]"
        payloads = [json.loads(e) for e in events[:-1]]
        assert not any("error" in p for p in payloads), payloads
        assert payloads[-1]["usage"]["prompt_tokens"] > 0
    else:
        assert r.json()["choices"][0]["message"]["content"]


# --- MCP over stdio --------------------------------------------------------------------------

def test_mcp_replies_to_arguments_with_lone_surrogates_and_bad_bytes(index_dir):
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "mcp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(index_dir))

    def call(raw: bytes) -> dict:
        proc.stdin.write(raw + b"\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "no reply from rag mcp"
        return json.loads(proc.stdout.readline())

    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "t", "version": "0"}}}
        assert call(json.dumps(init).encode())["id"] == 1
        proc.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        ask = call(b'{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": '
                   b'"ask_interview", "arguments": {"question": ' + LONE_JSON.encode() + b'}}}')
        assert ask["id"] == 2 and not ask["result"].get("isError"), ask
        assert json.loads(ask["result"]["content"][0]["text"])["question"] == "What is Gen-2\ufffd?"
        search = call(b'{"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": '
                      b'"search_transcript", "arguments": {"query": "Gen-2\xff", "k": 1}}}')
        assert json.loads(search["result"]["content"][0]["text"])["query"] == "Gen-2\ufffd"
    finally:
        proc.kill()
        proc.wait()
