"""rag.chat_models over real HTTP against tests/openai_server.py, and the fake model."""

import socket
import time

import pytest

from openai_server import OpenAIServer, cut, reply, sleep, status
from rag.chat_models import (ChatModel, FakeChatModel, OpenAIChatModel, chat_model_from_env,
                             DEFAULT_CHAT_MODEL)
from rag.errors import ChatModelError, ModelError

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def server():
    srv = OpenAIServer().start()
    yield srv
    srv.stop()


def model_for(server, **kw):
    kw.setdefault("timeout", 2.0)
    return OpenAIChatModel("test-model", base_url=server.url, api_key="sk-test", backoff=0, **kw)


def test_protocol():
    assert isinstance(FakeChatModel(), ChatModel)


def test_streaming_yields_deltas_and_sends_stream_true(server):
    server.script(reply("Gen-2 makes video from text [P1].", chunk_size=6))
    deltas = list(model_for(server).stream(HI, temperature=0.0, max_tokens=50))
    assert len(deltas) > 1
    assert "".join(deltas) == "Gen-2 makes video from text [P1]."
    body = server.chat_requests[0]["body"]
    assert body["stream"] is True and body["model"] == "test-model"
    assert body["messages"] == HI and body["max_tokens"] == 50 and body["temperature"] == 0.0
    assert server.chat_requests[0]["headers"]["authorization"] == "Bearer sk-test"


def test_complete_non_streaming(server):
    server.script(reply("whole reply"))
    assert model_for(server).complete(HI) == "whole reply"
    assert not server.chat_requests[0]["body"].get("stream")
    assert "max_tokens" not in server.chat_requests[0]["body"]


def test_models_endpoint(server):
    import openai

    client = openai.OpenAI(base_url=server.url, api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == ["test-model"]


def test_500_then_success_is_retried(server):
    server.script(status(500), status(503), reply("third time lucky"))
    assert "".join(model_for(server, max_retries=2).stream(HI)) == "third time lucky"
    assert len(server.chat_requests) == 3


def test_always_500_gives_clear_error_after_bounded_attempts(server):
    server.default = status(500, "boom")
    with pytest.raises(ChatModelError) as info:
        model_for(server, max_retries=2).complete(HI)
    message = str(info.value)
    assert server.url in message and "HTTP 500" in message and "3 attempts" in message
    assert "OPENAI_BASE_URL" in message and "--backend extractive" in message
    assert len(server.chat_requests) == 3
    assert isinstance(info.value, ModelError)


def test_429_is_retried_then_reported(server):
    server.default = status(429, "slow down")
    with pytest.raises(ChatModelError, match="HTTP 429"):
        list(model_for(server, max_retries=1).stream(HI))
    assert len(server.chat_requests) == 2


def test_401_says_key_refused_without_retrying(server):
    server.script(status(401, "bad key"))
    with pytest.raises(ChatModelError, match="refused the API key"):
        model_for(server).complete(HI)
    assert len(server.chat_requests) == 1


def test_404_names_the_model(server):
    server.script(status(404, "no such model"))
    with pytest.raises(ChatModelError, match="'test-model'"):
        model_for(server).complete(HI)


def test_timeout_fails_fast(server):
    server.default = sleep(2.0)
    started = time.monotonic()
    with pytest.raises(ChatModelError, match=r"timed out after 0\.3s"):
        list(model_for(server, timeout=0.3, max_retries=1).stream(HI))
    assert time.monotonic() - started < 1.5
    assert len(server.chat_requests) == 2


def test_unreachable_port():
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    model = OpenAIChatModel("m", base_url=url, timeout=0.5, max_retries=1, backoff=0)
    with pytest.raises(ChatModelError) as info:
        model.complete(HI)
    assert "cannot reach the chat server" in str(info.value) and url in str(info.value)


def test_error_mid_stream_becomes_chat_model_error(server):
    server.script(cut("partial answer that never ends"))
    received = []
    with pytest.raises(ChatModelError, match="broke off mid-stream"):
        for delta in model_for(server).stream(HI):
            received.append(delta)
    assert "".join(received).startswith("partial")
    assert len(server.chat_requests) == 1  # never retried once text was shown


def test_local_server_needs_no_key(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    model = OpenAIChatModel("local", base_url=server.url, backoff=0)
    assert model.complete(HI) == "Hello from the test server."
    assert server.chat_requests[0]["headers"]["authorization"] == "Bearer not-needed"


def test_no_key_and_no_url_is_an_error(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ChatModelError, match="OPENAI_API_KEY"):
        OpenAIChatModel("m")


def test_chat_model_from_env(server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("RAG_CHAT_MODEL", raising=False)
    assert chat_model_from_env() is None
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    model = chat_model_from_env()
    assert isinstance(model, OpenAIChatModel) and model.name == DEFAULT_CHAT_MODEL
    monkeypatch.setenv("RAG_CHAT_MODEL", "qwen2.5")
    assert chat_model_from_env().name == "qwen2.5"
    assert chat_model_from_env("llama3").name == "llama3"
    assert chat_model_from_env().complete(HI) == "Hello from the test server."


# -- the fake -----------------------------------------------------------------------------------

def test_fake_scripted_replies_in_chunks_and_records_calls():
    fake = FakeChatModel(["first"], chunk_size=2).enqueue("second")
    assert list(fake.stream(HI)) == ["fi", "rs", "t"]
    assert fake.complete(HI) == "second"
    assert fake.calls == [HI, HI]


def test_fake_default_reply_cites_first_label():
    passages = {"role": "user", "content": "[P1] 13:36 | x\nChris: Why?\nAna: Because video.\n"}
    assert FakeChatModel().complete([passages]) == "According to [P1], Because video."
    assert FakeChatModel().complete(HI) == "The interview doesn't cover this."


def test_fake_can_fail_before_or_mid_stream():
    fake = FakeChatModel(["abcdef", "ok"], chunk_size=2).fail_next(message="down", after_chars=4)
    got = []
    with pytest.raises(ChatModelError, match="down"):
        for d in fake.stream(HI):
            got.append(d)
    assert got == ["ab", "cd"]
    assert fake.complete(HI) == "ok"
