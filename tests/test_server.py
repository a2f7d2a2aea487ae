"""`rag serve` over real HTTP: uvicorn on a loopback port, httpx and the official openai client.

The index is the shipped episode built with the FakeEmbedder in a tmp folder (well under a second).
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from rag.api import Assistant, build_index  # noqa: E402
from rag.chat_models import FakeChatModel  # noqa: E402
from rag.config import Config  # noqa: E402
from rag.embedding import FakeEmbedder  # noqa: E402
from rag.errors import ChatModelError, IndexNotFound, InputError  # noqa: E402
from rag.server import MODEL_ID, BackgroundServer, create_app, split_messages  # noqa: E402

KEY = "s3cret-key"
CITED = "drawing tool self-driving car model Nvidia"   # the fake embedder answers this with a citation
TIMECODE = re.compile(r"\[\d{2}:\d{2}\]")


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    config = Config(index_dir=tmp_path_factory.mktemp("indexes"))
    build_index(None, config=config, embedder=FakeEmbedder())
    return config


@pytest.fixture(scope="module")
def assistant(config):
    return Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")


@pytest.fixture(scope="module")
def url(assistant):
    with BackgroundServer(create_app(assistant)) as url:
        yield url


@pytest.fixture(scope="module")
def locked_url(assistant):
    with BackgroundServer(create_app(assistant, api_key=KEY)) as url:
        yield url


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=10) as c:
        yield c


def _oa(url: str, key: str = "x"):
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)


def _sse(response: httpx.Response) -> list:
    """The data payloads of an SSE response, "[DONE]" kept as a string."""
    events = [e for e in response.text.split("\n\n") if e.strip()]
    assert all(e.startswith("data: ") for e in events), events
    return [e[6:] if e[6:] == "[DONE]" else json.loads(e[6:]) for e in events]


# --- shapes ------------------------------------------------------------------------------------

def test_health(client, assistant):
    assert client.get("/health").json() == {
        "status": "ok", "index": "practical-ai-260", "backend": "extractive",
        "chunks": len(assistant.index.chunks)}


def test_chapters(client):
    data = client.get("/chapters").json()
    assert data["episode"]["id"] == "practical-ai-260"
    assert data["episode"]["url"] == "https://changelog.com/practicalai/260"
    assert "Anastasis Germanidis" in data["episode"]["guests"]
    chapters = data["chapters"]
    assert len(chapters) > 10 and chapters[0]["start"] == "00:00"
    assert set(chapters[0]) == {"index", "title", "start", "start_s", "sponsor"} and chapters[0]["index"] == 1
    assert [c["start_s"] for c in chapters] == sorted(c["start_s"] for c in chapters)


def test_search(client, assistant):
    data = client.post("/search", json={"query": "funding and customers", "k": 3}).json()
    assert data["query"] == "funding and customers"
    assert data["passages"] == [h.to_json() for h in assistant.search("funding and customers", k=3)]
    assert set(data["passages"][0]) >= {"id", "chapter", "speakers", "start", "start_s", "text", "score"}
    alias = client.post("/search", json={"question": "funding and customers", "k": 3}).json()
    assert alias["passages"] == data["passages"]


def test_search_filters(client, assistant):
    chapter = "Navigating funding and customers"
    data = client.post("/search", json={"query": "customers", "chapter": chapter, "k": 5}).json()
    assert data["passages"] and {p["chapter"] for p in data["passages"]} == {chapter}
    data = client.post("/search", json={"query": "art school", "start_s": "10:00",
                                        "end_s": 1200}).json()
    expected = assistant.search("art school", start_s=600.0, end_s=1200.0)
    assert data["passages"] == [h.to_json() for h in expected] and expected


def test_episodes_and_the_show_and_episode_filters(client, assistant):
    listed = client.get("/episodes").json()["episodes"]
    assert [e["id"] for e in listed] == ["practical-ai-260"] and listed == assistant.episodes()
    assert client.get("/episodes", params={"show": "gotime"}).json() == {"episodes": []}
    data = client.post("/search", json={"query": "customers", "show": "Practical AI",
                                        "episode": "practical-ai-260"}).json()
    assert data["passages"] and {p["url"] for p in data["passages"]} == {"https://changelog.com/practicalai/260"}
    r = client.post("/ask", json={"question": CITED, "episode": "go-time-1"})
    assert r.status_code == 422 and "holds no episode 'go-time-1'" in r.json()["error"]["message"]
    r = client.post("/search", json={"query": "customers", "speaker": "Nobody"})
    assert r.status_code == 422 and r.json()["error"]["message"] == (
        "no speaker matches 'Nobody'; the speakers are: Chris Benson, Anastasis Germanidis")


def test_ask_is_answer_to_json(client, assistant):
    got = client.post("/ask", json={"question": CITED}).json()
    assert got == assistant.ask(CITED).to_json()
    assert not got["refused"] and got["citations"] and TIMECODE.search(got["answer"])


@pytest.mark.parametrize("history", [
    [["What is Gen-2?", "A video model."]],
    [{"question": "What is Gen-2?", "answer": "A video model."}],
])
def test_ask_with_history(client, history):
    got = client.post("/ask", json={"question": "When was it released?", "history": history}).json()
    assert got["question"] == "When was it released?"
    assert "Gen-2" in got["standalone_question"]


def test_index_page(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "CC BY-SA 4.0" in r.text and "Changelog Media LLC" in r.text
    assert "https://changelog.com/practicalai/260" in r.text
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?:", r.text)  # no CDN


# --- OpenAI-compatible -------------------------------------------------------------------------

def test_openai_client_models(url):
    assert [m.id for m in _oa(url).models.list()] == [MODEL_ID]


def test_openai_client_completion(url, assistant):
    resp = _oa(url).chat.completions.create(
        model="anything-goes", messages=[{"role": "system", "content": "ignored"},
                                         {"role": "user", "content": CITED}])
    expected = assistant.ask(CITED)
    assert resp.object == "chat.completion" and resp.choices[0].finish_reason == "stop"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].message.content == expected.text
    extra = resp.model_extra
    assert extra["citations"] == [c.to_json() for c in expected.citations]
    assert extra["passages"] == [h.to_json() for h in expected.hits]
    from rag.tokens import count_tokens

    assert resp.usage.completion_tokens == count_tokens(expected.text) > 10
    assert resp.usage.prompt_tokens == count_tokens("ignored\n" + CITED)
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_openai_client_stream(url, assistant):
    stream = _oa(url).chat.completions.create(
        model=MODEL_ID, stream=True, messages=[{"role": "user", "content": CITED}])
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    expected = assistant.ask(CITED)
    assert text == expected.text and TIMECODE.search(text)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["citations"] == [c.to_json() for c in expected.citations]
    assert last.model_extra["answer"] == expected.text
    assert all(c.usage is None for c in chunks)  # usage only when asked for


def test_openai_client_stream_with_usage(url, assistant):
    chunks = list(_oa(url).chat.completions.create(
        model=MODEL_ID, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": CITED}]))
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage.completion_tokens > 10
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_wire_format(client):
    r = client.post("/v1/chat/completions", json={
        "stream": True, "messages": [{"role": "user", "content": CITED}]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r)
    assert events[-1] == "[DONE]"
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    final = events[-2]
    assert final["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "stop"}
    assert final["citations"] and final["passages"]
    assert len({e["id"] for e in events[:-1]}) == 1


def test_follow_up_through_messages(url):
    messages = [{"role": "user", "content": "What is Gen-2?"},
                {"role": "assistant", "content": "Runway's video generation model [28:06]."},
                {"role": "user", "content": "When was it released?"}]
    resp = _oa(url).chat.completions.create(model=MODEL_ID, messages=messages)
    assert "Gen-2" in resp.model_extra["standalone_question"]


def test_split_messages():
    q, history = split_messages([
        {"role": "system", "content": "x"}, {"role": "user", "content": "a"},
        {"role": "assistant", "content": "A"}, {"role": "user", "content": "dropped"},
        {"role": "user", "content": [{"type": "text", "text": "b"}]}])
    assert (q, history) == ("b", [("a", "A")])


def test_fake_chat_model_streams_through_completions(config):
    chatty = Assistant.load(config=config, embedder=FakeEmbedder(), chat_model=FakeChatModel(chunk_size=3))
    with BackgroundServer(create_app(chatty)) as url:
        assert httpx.get(url + "/health").json()["backend"] == "openai"
        chunks = list(_oa(url).chat.completions.create(
            model=MODEL_ID, stream=True, messages=[{"role": "user", "content": CITED}]))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(deltas) > 5                      # really streamed, piece by piece
    final = chunks[-1].model_extra
    assert final["backend"] == "openai" and final["citations"]
    assert final["answer"].startswith("According to [") and TIMECODE.search(final["answer"])


def test_usage_with_a_chat_model_counts_what_the_model_was_sent_and_wrote(config):
    """A bot that budgets by ``usage`` sees the passages its chat model read, not only its own
    message: both ways, streamed and not, equal to the answer's own ``usage``."""
    chatty = Assistant.load(config=config, embedder=FakeEmbedder(), chat_model=FakeChatModel())
    expected = chatty.ask(CITED).usage
    with BackgroundServer(create_app(chatty)) as url:
        whole = _oa(url).chat.completions.create(model=MODEL_ID, messages=[{"role": "user", "content": CITED}])
        chunks = list(_oa(url).chat.completions.create(
            model=MODEL_ID, stream=True, stream_options={"include_usage": True},
            messages=[{"role": "user", "content": CITED}]))
    from rag.tokens import count_tokens

    for usage in (whole.usage, chunks[-1].usage):
        assert (usage.prompt_tokens, usage.completion_tokens) == (expected.prompt_tokens, expected.completion_tokens)
        assert usage.prompt_tokens > 20 * count_tokens(CITED)   # the passages, not the client's words
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# --- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path,body,needle", [
    ("/ask", {"question": ""}, "empty"),
    ("/ask", {"question": "   "}, "empty"),
    ("/ask", {"question": "x" * 2001}, "2000"),
    ("/ask", {"question": "hi", "k": 0}, "k must be"),
    ("/ask", {"question": "hi", "k": "five"}, "k:"),
    ("/ask", {"k": 3}, "question: Field required"),
    ("/ask", {"question": "hi", "history": [["only one"]]}, "history[0]"),
    ("/ask", {"question": "hi", "backend": "gpt-9"}, "unknown backend"),
    ("/search", {"k": 3}, "query"),
    ("/search", {"query": "x", "k": 1000}, "k must be"),
    ("/search", {"query": "x", "per_episode": 0}, "per_episode must be a whole number between 1 and 100"),
    ("/ask", {"question": "What is Gen-2?", "per_episode": 101}, "per_episode must be"),
    ("/ask", {"question": "What is Gen-2?", "per_episode": "two"}, "per_episode"),
    ("/v1/chat/completions", {"messages": []},
     'messages is empty; send the question as the last message, with role "user"'),
    ("/v1/chat/completions", {"messages": [{"role": "system", "content": "Be brief."}]},
     'messages holds no user message; send the question as the last message, with role "user"'),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": ""}]}, "empty"),
    ("/v1/chat/completions", {"stream": True, "messages": [{"role": "user", "content": ""}]}, "empty"),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "hi"}]}, "last message"),
    ("/v1/chat/completions", {"model": "m"}, "messages: Field required"),
])
def test_422(client, path, body, needle):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert needle in err["message"] and err["type"] == "invalid_request_error" and err["code"]


def test_422_bad_json(client):
    r = client.post("/ask", content=b'{"question": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"


def test_413(client):
    r = client.post("/ask", json={"question": "x" * 70_000})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit still holds
        for _ in range(20):
            yield b"x" * 8_000

    r = client.post("/ask", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_404_is_json(client):
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found"


def test_auth(locked_url):
    with httpx.Client(base_url=locked_url, timeout=10) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            r = c.post("/ask", json={"question": CITED}, headers=headers)
            assert r.status_code == 401
            assert r.json()["error"]["type"] == "unauthorized"
        assert c.get("/chapters").status_code == 401
        assert c.get("/health").status_code == 200          # public: probes and the page
        assert c.get("/").status_code == 200
        ok = c.post("/ask", json={"question": CITED}, headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.json()["citations"]
    with pytest.raises(openai.AuthenticationError):
        _oa(locked_url, "wrong").models.list()
    assert _oa(locked_url, KEY).models.list().data[0].id == MODEL_ID


class _Broken:
    """Just enough of an Assistant for the error mapping: every operation raises ``err``."""

    name, backend, transcripts, chapters = "broken", "extractive", [], []

    class index:
        chunks = ()

    def __init__(self, err):
        self.err = err

    def ask(self, *a, **kw):
        raise self.err

    stream = search = ask


@pytest.mark.parametrize("err,status,type_", [
    (IndexNotFound("no index named x; run rag index"), 503, "index_error"),
    (ChatModelError("the chat server at http://h timed out"), 502, "chat_model_error"),
    (RuntimeError("boom"), 500, "server_error"),
])
def test_errors_map_to_status(err, status, type_):
    with BackgroundServer(create_app(_Broken(err))) as url:
        r = httpx.post(url + "/ask", json={"question": "hi"})
    assert r.status_code == status and r.json()["error"]["type"] == type_
    assert "Traceback" not in r.text
    if status != 500:
        assert r.json()["error"]["message"] == str(err)


# --- concurrency -------------------------------------------------------------------------------

def test_concurrent_requests(client, assistant):
    questions = [CITED, "What is Gen-2?", "funding and customers", "art school at NYU",
                 "video generation models"] * 4
    expected = {q: assistant.ask(q).to_json() for q in set(questions)}

    def one(q):
        if len(q) % 2:
            return q, client.post("/ask", json={"question": q}).json()
        r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": q}]})
        return q, {"answer": r.json()["choices"][0]["message"]["content"]}

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(one, questions))
    assert len(results) == 20
    for q, got in results:
        if "question" in got:
            assert got == expected[q]
        else:
            assert got["answer"] == expected[q]["answer"]


def test_a_busy_port_is_one_clear_error_and_port_zero_picks_a_free_one():
    import socket

    from rag.errors import RagError
    from rag.server import _bind

    first = _bind("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        assert port != 0
        with pytest.raises(RagError, match=rf"127.0.0.1:{port} is already in use.*--port"):
            _bind("127.0.0.1", port)
        assert isinstance(first, socket.socket)
    finally:
        first.close()


def test_accepted_connections_send_without_nagle_delay():
    # asyncio sets TCP_NODELAY only on TCP-protocol sockets; without it, a response written in two
    # parts waited for the client's delayed ACK (~40 ms a request on a kept-alive connection).
    import asyncio
    import socket

    from rag.server import _bind

    async def accepted_nodelay() -> int:
        seen: asyncio.Future = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listener = _bind("127.0.0.1", 0)
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", listener.getsockname()[1])
            try:
                return await asyncio.wait_for(seen, 5)
            finally:
                writer.close()

    assert asyncio.run(accepted_nodelay()) != 0


def test_cors_only_for_configured_origins_and_the_key_still_applies(assistant):
    app = create_app(assistant, api_key=KEY, cors_origins=("https://bot.example.com",))
    with BackgroundServer(app) as url:
        pre = httpx.options(url + "/v1/chat/completions", headers={
            "origin": "https://bot.example.com", "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type"})
        assert pre.status_code == 200  # the preflight carries no key and is still answered
        assert pre.headers["access-control-allow-origin"] == "https://bot.example.com"
        other = httpx.options(url + "/search", headers={
            "origin": "https://evil.example", "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        no_key = httpx.post(url + "/search", json={"query": "Gen-2"},
                            headers={"origin": "https://bot.example.com"})
        assert no_key.status_code == 401
        ok = httpx.post(url + "/search", json={"query": "Gen-2"},
                        headers={"origin": "https://bot.example.com", "authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://bot.example.com"
    with BackgroundServer(create_app(assistant)) as url:  # default: no CORS headers at all
        r = httpx.post(url + "/search", json={"query": "Gen-2"}, headers={"origin": "https://bot.example.com"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


@pytest.mark.parametrize("text, says", [("the", "doesn't look like a question"), ("\U0001F916", "doesn't look like"),
                                        ("Qu'est-ce que Gen-2 ?", "ask in English")])
def test_no_question_is_told_so_without_a_quote_over_http_and_the_openai_endpoint(client, text, says):
    got = client.post("/ask", json={"question": text}).json()
    assert says in got["answer"] and got["refused"] and not got["citations"] and not got["passages"]
    assert "doesn't cover" not in got["answer"]
    r = client.post("/v1/chat/completions", json={"model": MODEL_ID,
                                                  "messages": [{"role": "user", "content": text}]})
    assert says in r.json()["choices"][0]["message"]["content"]


def test_a_chat_completion_scoped_to_a_chapter(client, assistant):
    """The web page's outline: ``chapter`` on a chat completion searches that chapter only, and a
    chapter the episode does not have is a 422 that lists the chapters, as on every door; a search
    filtered by it matches nothing."""
    chapter = next(c.title for c in assistant.chapters if not c.sponsor)
    r = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "What is said here?"}],
                                                  "chapter": chapter})
    assert r.status_code == 200, r.text
    assert {p["chapter"] for p in r.json()["passages"]} == {chapter}
    bad = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Gen-2?"}],
                                                    "chapter": "No such chapter"})
    assert bad.status_code == 422 and "no chapter matches 'No such chapter'" in bad.json()["error"]["message"]
    assert chapter in bad.json()["error"]["message"]
    with pytest.raises(InputError, match="no chapter matches"):
        assistant.ask("Gen-2?", chapter="No such chapter")
    searched = client.post("/search", json={"query": "Gen-2", "chapter": "nope"})   # a filter: no match
    assert searched.status_code == 200 and searched.json()["passages"] == []
