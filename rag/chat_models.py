"""Chat models: one small protocol, an OpenAI-compatible client, and a deterministic fake.

A chat model takes OpenAI-style messages (``[{"role": "system", "content": ...}, ...]``) and
either streams text deltas or returns the whole reply. ``OpenAIChatModel`` talks to any
OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp) through the official ``openai``
package; every failure, after bounded retries, becomes one ``ChatModelError`` that says which
server, what went wrong and what to do. ``FakeChatModel`` is for tests and demos: scripted
replies, recorded calls, no network.
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from typing import Any, Iterator, Protocol, runtime_checkable

from .errors import ChatModelError

__all__ = ["ChatModel", "OpenAIChatModel", "FakeChatModel", "chat_model_from_env",
           "DEFAULT_CHAT_MODEL"]

DEFAULT_CHAT_MODEL = "gpt-4o-mini"
_WHAT_TO_DO = ("Check OPENAI_BASE_URL and that the server is running, "
               "or use `--backend extractive`.")


@runtime_checkable
class ChatModel(Protocol):
    name: str

    def stream(self, messages: list[dict], *, temperature: float = 0.0,
               max_tokens: int | None = None) -> Iterator[str]:
        """Yield the reply as text deltas."""
        ...

    def complete(self, messages: list[dict], **kw: Any) -> str:
        """Return the whole reply."""
        ...


class OpenAIChatModel:
    """A model behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    Retries connection errors, timeouts, 429 and 5xx up to ``max_retries`` times with
    exponential backoff (``backoff`` seconds, doubling, capped at 8 s). We retry ourselves rather
    than through the client so that tests can set ``backoff=0`` and so that a stream is never
    retried after it has already yielded text.
    """

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float = 30.0, max_retries: int = 2, backoff: float = 0.5,
                 client: Any = None):
        import openai  # lazy: only the `openai` backend pays for this import

        self._openai = openai
        self.name = model
        self.model = model
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff = max(0.0, backoff)
        if client is None:
            api_key = api_key or os.environ.get("OPENAI_API_KEY")
            base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
            if not api_key:
                if not base_url:
                    raise ChatModelError(
                        "no chat model configured: set OPENAI_API_KEY (for OpenAI) or "
                        "OPENAI_BASE_URL (for a local OpenAI-compatible server), "
                        "or use `--backend extractive`")
                api_key = "not-needed"  # local servers ignore the key but the client wants one
            client = openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout,
                                   max_retries=0)
        self.client = client
        self.url = str(getattr(client, "base_url", base_url or "")).rstrip("/")

    def __repr__(self) -> str:
        return f"OpenAIChatModel({self.model!r}, base_url={self.url!r})"

    # -- public ---------------------------------------------------------------------------

    def stream(self, messages: list[dict], *, temperature: float = 0.0,
               max_tokens: int | None = None) -> Iterator[str]:
        response = self._with_retries(messages, stream=True, temperature=temperature,
                                      max_tokens=max_tokens)
        try:
            for chunk in response:
                if not chunk.choices:
                    continue  # some servers send a final usage-only chunk
                delta = chunk.choices[0].delta.content
                if delta:
                    yield delta
        except self._openai.OpenAIError as err:
            raise ChatModelError(self._stream_broke(err)) from err
        except Exception as err:  # the HTTP layer's own read errors are not wrapped by openai
            raise ChatModelError(self._stream_broke(err)) from err
        finally:
            close = getattr(response, "close", None)
            if close:
                close()

    def complete(self, messages: list[dict], *, temperature: float = 0.0,
                 max_tokens: int | None = None, **_: Any) -> str:
        response = self._with_retries(messages, stream=False, temperature=temperature,
                                      max_tokens=max_tokens)
        try:
            return response.choices[0].message.content or ""
        except (AttributeError, IndexError, TypeError) as err:
            raise ChatModelError(
                f"the chat server at {self.url} sent a reply without a message; {_WHAT_TO_DO}"
            ) from err

    # -- internals ------------------------------------------------------------------------

    def _with_retries(self, messages: list[dict], **params: Any) -> Any:
        kwargs = {"model": self.model, "messages": messages, **params}
        if kwargs.get("max_tokens") is None:
            kwargs.pop("max_tokens", None)
        attempts = 0
        while True:
            attempts += 1
            try:
                return self.client.chat.completions.create(**kwargs)
            except self._openai.OpenAIError as err:
                if attempts > self.max_retries or not self._retryable(err):
                    raise ChatModelError(self._describe(err, attempts)) from err
                time.sleep(min(self.backoff * 2 ** (attempts - 1), 8.0))

    def _retryable(self, err: Exception) -> bool:
        o = self._openai
        if isinstance(err, (o.APIConnectionError, o.RateLimitError)):  # includes timeouts
            return True
        return isinstance(err, o.APIStatusError) and err.status_code >= 500

    def _describe(self, err: Exception, attempts: int) -> str:
        o = self._openai
        tries = f" ({attempts} attempt{'s' if attempts != 1 else ''})"
        if isinstance(err, o.APITimeoutError):
            what = f"the chat server at {self.url} timed out after {self.timeout:g}s{tries}"
        elif isinstance(err, o.APIConnectionError):
            cause = err.__cause__ or err
            what = f"cannot reach the chat server at {self.url}: {cause}{tries}"
        elif isinstance(err, o.AuthenticationError):
            return (f"the chat server at {self.url} refused the API key (HTTP 401); "
                    "check OPENAI_API_KEY, or use `--backend extractive`")
        elif isinstance(err, o.NotFoundError):
            what = (f"the chat server at {self.url} answered HTTP 404 for model "
                    f"{self.model!r}; check RAG_CHAT_MODEL and OPENAI_BASE_URL (it usually ends in /v1)")
        elif isinstance(err, o.APIStatusError):
            detail = re.sub(r"^Error code: \d+ - ", "", getattr(err, "message", "") or str(err))
            busy = " (rate limited)" if err.status_code == 429 else ""
            what = (f"the chat server at {self.url} answered HTTP {err.status_code}{busy}{tries}: "
                    f"{_short(detail)}")
        else:
            what = f"the chat request to {self.url} failed: {_short(str(err))}{tries}"
        return f"{what}. {_WHAT_TO_DO}"

    def _stream_broke(self, err: Exception) -> str:
        return (f"the reply from the chat server at {self.url} broke off mid-stream: "
                f"{_short(str(err)) or type(err).__name__}. {_WHAT_TO_DO}")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split()).rstrip(".")  # we end the sentence ourselves
    return text if len(text) <= limit else text[: limit - 1] + "…"


class FakeChatModel:
    """A deterministic chat model for tests: scripted replies, recorded calls, optional failures.

    With an empty queue it answers from the prompt itself: it cites the first passage label it
    finds ("According to [P1], ...") or, with none, says the interview doesn't cover it.
    """

    name = "fake"

    def __init__(self, replies: list[str] | None = None, *, chunk_size: int = 4):
        self.replies: deque[str] = deque(replies or [])
        self.chunk_size = max(1, chunk_size)
        self.calls: list[list[dict]] = []
        self._failures: deque[tuple[str, int]] = deque()

    def enqueue(self, *replies: str) -> "FakeChatModel":
        self.replies.extend(replies)
        return self

    def fail_next(self, times: int = 1, message: str = "fake chat model failure", *,
                  after_chars: int = 0) -> "FakeChatModel":
        """Make the next ``times`` calls raise ChatModelError, after streaming ``after_chars``."""
        self._failures.extend([(message, after_chars)] * times)
        return self

    def stream(self, messages: list[dict], *, temperature: float = 0.0,
               max_tokens: int | None = None) -> Iterator[str]:
        self.calls.append([dict(m) for m in messages])
        failure = self._failures.popleft() if self._failures else None
        reply = self.replies.popleft() if self.replies else self._default_reply(messages)
        if failure:
            message, after = failure
            reply = reply[:after]
        for i in range(0, len(reply), self.chunk_size):
            yield reply[i: i + self.chunk_size]
        if failure:
            raise ChatModelError(message)

    def complete(self, messages: list[dict], **kw: Any) -> str:
        return "".join(self.stream(messages, **kw))

    @staticmethod
    def _default_reply(messages: list[dict]) -> str:
        text = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "system")
        found = re.search(r"^\[(P\d+)\][^\n]*\n((?:[^\n]+\n?)*)", text, re.M)
        if not found:
            return "The interview doesn't cover this."
        # the passage's longest speaker line: more likely an answer than the host's question
        lines = [re.sub(r"^[^:\n]{1,40}: ", "", l) for l in found.group(2).splitlines()]
        words = max(lines, key=len).split()[:20]
        return f"According to [{found.group(1)}], {' '.join(words).rstrip('.?!')}."


def chat_model_from_env(model: str | None = None, **kw: Any) -> ChatModel | None:
    """An OpenAIChatModel when OPENAI_API_KEY or OPENAI_BASE_URL is set, else None."""
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        return None
    return OpenAIChatModel(model or os.environ.get("RAG_CHAT_MODEL") or DEFAULT_CHAT_MODEL, **kw)
