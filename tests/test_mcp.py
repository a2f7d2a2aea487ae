"""`rag mcp` through the SDK's own stdio client: a real subprocess, the fake embedder, a tmp index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import anyio
import pytest

pytest.importorskip("mcp")

from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

TOOLS = {"search_transcript", "ask_interview", "list_chapters", "list_episodes"}


def _env(tmp_path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    env.update(RAG_INDEX_DIR=str(tmp_path / "indexes"), RAG_EMBED_MODEL="fake")
    return env


def _payload(result) -> dict:
    assert not result.is_error, result.content
    assert result.structured_content == json.loads(result.content[0].text)
    return result.structured_content


async def _session_run(tmp_path) -> dict:
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp"],
                                   env=_env(tmp_path))
    out: dict = {}
    with open(tmp_path / "server.err", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as session:
                with anyio.fail_after(30):
                    out["init"] = await session.initialize()
                    out["tools"] = (await session.list_tools()).tools
                    out["search"] = await session.call_tool(
                        "search_transcript", {"query": "video generation models", "k": 3})
                    out["filtered"] = await session.call_tool(
                        "search_transcript", {"query": "funding", "k": 2,
                                              "chapter": "Navigating funding"})
                    out["ask"] = await session.call_tool(
                        "ask_interview", {"question": "What did Anastasis study at art school?"})
                    out["chapters"] = await session.call_tool("list_chapters", {})
                    out["episodes"] = await session.call_tool("list_episodes", {})
                    out["by_show"] = await session.call_tool(
                        "search_transcript", {"query": "funding", "k": 2, "show": "practicalai",
                                              "episode": "practical-ai-260"})
                    out["no_show"] = await session.call_tool(
                        "search_transcript", {"query": "funding", "show": "JS Party"})
                    out["no_speaker"] = await session.call_tool(
                        "search_transcript", {"query": "funding", "speaker": "Nobody"})
                    out["empty"] = await session.call_tool("search_transcript", {"query": "  "})
                    out["bad_k"] = await session.call_tool(
                        "search_transcript", {"query": "runway", "k": 0})
                    out["wrong_type"] = await session.call_tool("ask_interview", {"question": 3.5})
                    out["after"] = await session.call_tool("list_chapters", {})
                    out["not_a_question"] = await session.call_tool("ask_interview", {"question": "and so"})
                    out["per_episode"] = await session.call_tool(
                        "search_transcript", {"query": "funding", "k": 3, "per_episode": 1})
                    out["bad_per_episode"] = await session.call_tool(
                        "search_transcript", {"query": "funding", "per_episode": 0})
                    first = await session.call_tool("ask_interview", {"question": "What is Gen-2?"})
                    turn = ["What is Gen-2?", first.structured_content["answer"]]
                    out["follow_up"] = await session.call_tool(
                        "ask_interview", {"question": "What about Gen-1?", "history": [turn]})
                    out["as_objects"] = await session.call_tool(
                        "ask_interview", {"question": "And why?",
                                          "history": [{"question": turn[0], "answer": turn[1]}]})
                    out["new_topic"] = await session.call_tool(
                        "ask_interview", {"question": "What did Anastasis study at art school?",
                                          "history": [turn]})
                    out["bad_history"] = await session.call_tool(
                        "ask_interview", {"question": "And why?", "history": [["only the question"]]})
    return out


@pytest.fixture(scope="module")
def mcp_run(tmp_path_factory):
    return anyio.run(_session_run, tmp_path_factory.mktemp("mcp"))


def test_four_tools_listed_with_schemas(mcp_run):
    tools = {t.name: t for t in mcp_run["tools"]}
    assert set(tools) == TOOLS
    search = tools["search_transcript"].input_schema
    assert search["required"] == ["query"]
    assert {"query", "k", "chapter", "speaker", "start_s", "end_s", "show", "episode"} <= set(search["properties"])
    assert tools["ask_interview"].input_schema["required"] == ["question"]
    assert {"history", "k", "show", "episode", "per_episode"} <= set(tools["ask_interview"].input_schema["properties"])
    assert all(t.description for t in tools.values())
    assert "Runway" in (mcp_run["init"].instructions or "")


def test_search_returns_timed_passages(mcp_run):
    found = _payload(mcp_run["search"])
    assert found["query"] == "video generation models"
    passages = found["passages"]
    assert 1 <= len(passages) <= 3
    for p in passages:  # the Hit.to_json shape
        assert {"id", "chapter", "speakers", "start", "start_s", "end_s", "text", "score"} <= set(p)
        assert p["start"].count(":") >= 1
    filtered = _payload(mcp_run["filtered"])["passages"]
    assert filtered and all("funding" in p["chapter"].lower() for p in filtered)


def test_ask_returns_answer_with_citations(mcp_run):
    answer = _payload(mcp_run["ask"])
    assert {"question", "answer", "refused", "backend", "citations", "passages"} <= set(answer)
    assert answer["backend"] == "extractive"
    assert answer["passages"]
    if not answer["refused"]:
        assert answer["citations"]
        assert all(f"[{c['start']}]" in answer["answer"] for c in answer["citations"])


def test_list_chapters(mcp_run):
    chapters = _payload(mcp_run["chapters"])["chapters"]
    assert len(chapters) >= 5
    assert chapters[0]["start_s"] == 0 or chapters[0]["start"] == "00:00"
    assert [c["start_s"] for c in chapters] == sorted(c["start_s"] for c in chapters)
    assert any("funding" in c["title"].lower() for c in chapters)
    # the same chapter JSON as HTTP's /chapters: one writer (Chapter.to_json)
    assert set(chapters[0]) == {"index", "title", "start", "start_s", "sponsor"} and chapters[0]["index"] == 1


def test_list_episodes_and_the_show_and_episode_filters(mcp_run):
    episodes = _payload(mcp_run["episodes"])["episodes"]
    assert [e["id"] for e in episodes] == ["practical-ai-260"]
    assert episodes[0]["show"] == "Practical AI" and episodes[0]["url"] == "https://changelog.com/practicalai/260"
    assert episodes[0]["guests"] == ["Anastasis Germanidis"]
    passages = _payload(mcp_run["by_show"])["passages"]
    assert passages and all(p["episode"] == "practical-ai-260" and p["show"] == "Practical AI" for p in passages)
    assert mcp_run["no_show"].is_error and "holds no show 'JS Party'" in mcp_run["no_show"].content[0].text
    assert mcp_run["no_speaker"].is_error and "no speaker matches 'Nobody'; the speakers are: Chris Benson" \
        in mcp_run["no_speaker"].content[0].text


def test_bad_calls_are_tool_errors_and_server_survives(mcp_run):
    for key, needle in (("empty", "question is empty"), ("bad_k", "k must be between"),
                        ("wrong_type", "")):
        result = mcp_run[key]
        assert result.is_error, key
        assert needle in result.content[0].text
    assert _payload(mcp_run["after"])["chapters"]  # still serving


def test_stdout_carries_only_protocol(tmp_path):
    """Raw JSON-RPC over the pipes: every stdout line parses; the index build logs to stderr."""
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "0"}}}
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "mcp"], input=json.dumps(init) + "\n",
                          capture_output=True, text=True, env=_env(tmp_path), timeout=60)
    lines = [l for l in proc.stdout.splitlines() if l.strip()]
    assert lines, proc.stderr
    for line in lines:
        json.loads(line)
    assert json.loads(lines[0])["id"] == 1
    assert "embedding" in proc.stderr  # the build's progress went to stderr


def test_stdout_to_stderr_catches_python_and_c_level_writes(tmp_path):
    code = textwrap.dedent("""
        import os, sys
        from rag.mcp_server import stdout_to_stderr
        with stdout_to_stderr():
            print("stray print")
            os.write(1, b"stray fd write\\n")
        print("after")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.stdout == "after\n"
    assert "stray print" in proc.stderr and "stray fd write" in proc.stderr


def test_an_input_that_is_no_question_is_told_so_without_a_quote(mcp_run):
    answer = _payload(mcp_run["not_a_question"])
    assert "doesn't look like a question" in answer["answer"] and not answer["citations"]


def test_a_follow_up_is_read_against_the_history_it_is_sent_as_over_http(mcp_run):
    """Issue 25, section 2: follow-ups over MCP as in `rag chat` and HTTP's /ask (the same
    history shapes, validated by the same function)."""
    follow_up = _payload(mcp_run["follow_up"])
    assert follow_up["standalone_question"] == "What about Gen-1? (following up on: What is Gen-2?)"
    assert _payload(mcp_run["as_objects"])["standalone_question"].endswith("(following up on: What is Gen-2?)")
    new_topic = _payload(mcp_run["new_topic"])   # about something new: searched as asked
    assert "standalone_question" not in new_topic
    assert new_topic["question"] == "What did Anastasis study at art school?"
    bad = mcp_run["bad_history"]
    assert bad.is_error and "history[0] must be [question, answer]" in bad.content[0].text


def test_search_takes_a_per_episode_limit_validated_as_everywhere(mcp_run):
    assert len(_payload(mcp_run["per_episode"])["passages"]) == 1   # one episode, one passage
    bad = mcp_run["bad_per_episode"]
    assert bad.is_error and "per_episode must be a whole number between 1 and 100" in bad.content[0].text
