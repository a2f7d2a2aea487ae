"""Issue 9.7: errors that said the wrong thing now say what is wrong and what to do, through the
real CLI (subprocesses) and the real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import httpx
import pytest

from rag.api import build_index
from rag.config import Config
from rag.embedding import FakeEmbedder

VTT = ("WEBVTT\n\n00:00:01.000 --> 00:00:04.000\n<v Alice>Hello there, this is a small test.\n\n"
       "00:00:05.000 --> 00:00:09.000\n<v Bob>Indeed it is a test of the subtitles.\n")


@pytest.fixture
def env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    env.update(RAG_INDEX_DIR=str(tmp_path / "indexes"), RAG_EMBED_MODEL="fake")
    return env


def rag(env, *args, cwd=None, stdout=subprocess.PIPE, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=env, cwd=cwd, text=True,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=timeout)


def _one_line_error(proc, code: int | None = None) -> str:
    assert proc.returncode != 0 and (code is None or proc.returncode == code), proc
    lines = [l for l in proc.stderr.splitlines()  # the shipped index's first build shows progress
             if l.strip() and not l.startswith(("embedding ", "chunking ", "building the BM25"))]
    assert len(lines) == 1 and lines[0].startswith("rag: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "unexpected error" not in proc.stderr
    return lines[0]


# --- rag serve ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--port", "99999"], "--port 99999 is not a TCP port; choose one from 1 to 65535"),
    (["--port", "-1"], "--port -1 is not a TCP port"),
    (["--host", "999.1.1.1"], "--host 999.1.1.1 is not an address or host name"),
    (["--host", "192.0.2.123"], "--host 192.0.2.123 is not an address of this machine"),
])
def test_serve_refuses_a_bad_port_or_host_clearly_and_at_once(env, args, says):
    proc = rag(env, "serve", *args, timeout=30)
    line = _one_line_error(proc, 2)
    assert says in line and "stop the other server" not in line
    assert "embedding" not in proc.stderr  # refused before any index was built


def test_serve_on_a_busy_port_says_so(env):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        line = _one_line_error(rag(env, "serve", "--port", str(port), timeout=30))
    assert f"127.0.0.1:{port} is already in use: stop the other server" in line


# --- transcripts -------------------------------------------------------------------------------

@pytest.mark.parametrize("what, says", [
    ("directory", "is a directory, not a file"),
    ("/dev/null", "is a device or socket, not a file"),
    ("pyproject.toml", "this does not look like a transcript"),
    ("notes.md", "this does not look like a transcript"),
    ("missing.vtt", "file not found"),
])
@pytest.mark.parametrize("command", ["transcript", "index"])
def test_a_path_that_is_no_transcript_says_what_it_is(env, tmp_path, what, says, command):
    from pathlib import Path

    path = {"directory": str(tmp_path), "/dev/null": "/dev/null",
            "pyproject.toml": str(Path(__file__).resolve().parent.parent / "pyproject.toml"),
            "missing.vtt": str(tmp_path / "missing.vtt")}.get(what)
    if what == "notes.md":
        path = str(tmp_path / "notes.md")
        Path(path).write_text("Shopping list\n\nmilk, eggs and bread for the weekend\n")
    if what == "directory" and command == "index":
        says = "this folder holds no transcripts"  # `rag index` reads folders of transcripts
    line = _one_line_error(rag(env, command, path), 3)
    assert says in line and path in line
    assert not (tmp_path / "indexes").exists() or not any((tmp_path / "indexes").glob("*/CURRENT"))


def test_a_pipe_is_still_read(env, tmp_path):
    proc = subprocess.run(["bash", "-c", f"{shlex.quote(sys.executable)} -m rag.cli transcript "
                           f"<(printf %s {shlex.quote(VTT)}) --json"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [t["speaker"] for t in json.loads(proc.stdout)["turns"]] == ["Alice", "Bob"]


def test_duplicate_sources_are_indexed_once(env, tmp_path):
    (tmp_path / "a.vtt").write_text(VTT)
    proc = rag(env, "index", "a.vtt", "./a.vtt", str(tmp_path / "a.vtt"), "--name", "dup", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("is given more than once; indexed once") == 2
    manifest = json.loads(next((tmp_path / "indexes" / "dup").glob("v-*/manifest.json")).read_text())
    assert [s["path"] for s in manifest["sources"]] == [str(tmp_path / "a.vtt")]
    assert manifest["sentences"] == 2


def test_a_changed_source_gives_the_exact_rebuild_command(env, tmp_path):
    folder = tmp_path / "my episodes"   # a space: the command must quote it
    folder.mkdir()
    (folder / "a.vtt").write_text(VTT)
    (folder / "b.vtt").write_text(VTT.replace("Alice", "Carol"))
    assert rag(env, "index", str(folder / "a.vtt"), str(folder / "b.vtt"), "--name", "two").returncode == 0
    (folder / "b.vtt").write_text(VTT.replace("Alice", "Dave"))
    line = _one_line_error(rag(env, "ask", "hello", "--index", "two"), 4)
    command = shlex.join(["rag", "index", str(folder / "a.vtt"), str(folder / "b.vtt"), "--name", "two"])
    assert line.endswith(f"rebuild it with: {command}"), line
    assert "SOURCES" not in line
    rebuilt = subprocess.run([sys.executable, "-m", "rag.cli", *shlex.split(command)[1:]], env=env,
                             capture_output=True, text=True, timeout=120)
    assert rebuilt.returncode == 0, rebuilt.stderr   # the command it gave works as given


def test_a_deleted_source_is_reported(env, tmp_path):
    (tmp_path / "a.vtt").write_text(VTT)
    (tmp_path / "b.vtt").write_text(VTT.replace("Alice", "Carol"))
    assert rag(env, "index", str(tmp_path / "a.vtt"), str(tmp_path / "b.vtt"), "--name", "gone").returncode == 0
    (tmp_path / "b.vtt").unlink()
    proc = rag(env, "ask", "hello", "--index", "gone", "--json")
    assert proc.returncode == 0, proc.stderr
    notes = json.loads(proc.stdout)["notes"]
    assert any(f"built from {tmp_path / 'b.vtt'}, which no longer exists" in n
               and f"rag index {tmp_path / 'a.vtt'} --name gone" in n for n in notes), notes


# --- search and output -------------------------------------------------------------------------

def test_start_after_end_says_so(env):
    line = _one_line_error(rag(env, "search", "research", "--start", "30:00", "--end", "10:00"), 2)
    assert "the start (30:00) is after the end (10:00)" in line


def test_no_match_names_only_the_filters_given(env):
    proc = rag(env, "search", "research", "--chapter", "no such chapter at all")
    assert proc.returncode == 0 and proc.stdout.strip() == "No passage matches (check --chapter)."


@pytest.mark.parametrize("args", [["transcript", "rag/data/practical-ai-260/transcript.md"],
                                  ["ask", "How did Runway start?"],
                                  ["search", "funding", "--json"]])
def test_output_to_a_full_disk_is_one_clear_line(env, args):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open("/dev/full", "w") as full:
        proc = rag(env, *args, cwd=root, stdout=full)
    line = _one_line_error(proc, 1)
    assert "cannot write the output (No space left on device)" in line
    assert "Exception ignored" not in proc.stderr


# --- HTTP --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def url(tmp_path_factory):
    pytest.importorskip("fastapi")
    from rag.api import Assistant
    from rag.server import BackgroundServer, create_app

    config = Config(index_dir=tmp_path_factory.mktemp("indexes"))
    build_index(None, config=config, embedder=FakeEmbedder())
    assistant = Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")
    with BackgroundServer(create_app(assistant)) as url:
        yield url


@pytest.mark.parametrize("path", ["/ask", "/search", "/v1/chat/completions"])
def test_a_body_not_sent_as_json_gets_a_clear_415(url, path):
    r = httpx.post(url + path, content=b'{"question": "hi"}', timeout=10,
                   headers={"content-type": "text/plain"})
    assert r.status_code == 415
    error = r.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "must be JSON sent with 'Content-Type: application/json', not text/plain" in error["message"]


def test_json_bodies_still_work_with_or_without_a_charset(url):
    for ctype in ("application/json", "application/json; charset=utf-8"):
        r = httpx.post(url + "/search", content=b'{"query": "funding", "k": 1}', timeout=10,
                       headers={"content-type": ctype})
        assert r.status_code == 200, r.text


def test_http_start_after_end_is_a_422_that_says_so(url):
    r = httpx.post(url + "/search", json={"query": "funding", "start_s": 1800, "end_s": 600}, timeout=10)
    assert r.status_code == 422 and "the start (30:00) is after the end (10:00)" in r.json()["error"]["message"]


def test_a_label_alone_on_its_line_is_still_a_transcript(tmp_path):
    """157 catalog news episodes put the speaker label on a line of its own: not refused."""
    from rag.parsers import load_transcript

    path = tmp_path / "news.md"
    path.write_text("**Jerod Santo:**\n\nWhat up, nerds? This is the news for the week.\n\n"
                    "**Break:**\n\n**Jerod Santo:**\n\nMuch like myself, he turned the corner.\n")
    assert load_transcript(path).turns


@pytest.mark.parametrize("body, says", [
    ({"query": "funding", "start_s": "soon"}, "start_s: not a timestamp: 'soon'"),
    ({"query": "funding", "end_s": -3}, "the end time must be seconds into the episode"),
])
def test_http_bad_times_are_a_422_that_says_so(url, body, says):
    r = httpx.post(url + "/search", json=body, timeout=10)
    assert r.status_code == 422 and says in r.json()["error"]["message"], r.text
