"""Chat models: one small protocol, an OpenAI-compatible client, and a deterministic fake.

A chat model takes OpenAI-style messages (``[{"role": "system", "content": ...}, ...]``) and
either streams text deltas or returns the whole reply. ``OpenAIChatModel`` talks to any
OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp) through the official ``openai``
package; every failure, after bounded retries, becomes one ``ChatModelError`` that says which
server, what went wrong and what to do. ``FakeChatModel`` is for tests and demos: scripted
replies, recorded calls, no network.

Every call has a wall-clock ``Deadline``: the first token within ``first_token_timeout`` (20 s),
the whole reply within ``total_timeout`` (60 s); retries happen only inside it. An answer passes
one deadline to all of its model calls (condensing, rewriting, answering). The HTTP exchange runs
in a helper thread, so a server that hangs, or drips a token every few seconds, costs the caller
no more than the deadline.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

from .errors import ChatModelError, ReplyTruncated

__all__ = ["ChatModel", "OpenAIChatModel", "FakeChatModel", "chat_model_from_env", "Deadline",
           "DEFAULT_CHAT_MODEL", "FIRST_TOKEN_TIMEOUT", "TOTAL_TIMEOUT"]

DEFAULT_CHAT_MODEL = "gpt-4o-mini"
FIRST_TOKEN_TIMEOUT = 20.0   # seconds until the answer's first token (RAG_CHAT_TIMEOUT)
TOTAL_TIMEOUT = 60.0         # seconds until the whole answer
_WHAT_TO_DO = ("Check OPENAI_BASE_URL and that the server is running, "
               "or use `--backend extractive`.")


@dataclass(frozen=True)
class Deadline:
    """When the first token of an answer is due, and when the whole answer is (monotonic s)."""

    first_by: float
    done_by: float
    first_s: float
    total_s: float

    @classmethod
    def start(cls, first_s: float = FIRST_TOKEN_TIMEOUT, total_s: float = TOTAL_TIMEOUT) -> "Deadline":
        now = time.monotonic()
        return cls(now + min(first_s, total_s), now + total_s, min(first_s, total_s), total_s)

    def left(self, started: bool) -> float:
        """Seconds left until the next thing is due: the first token, or once ``started`` the end."""
        return (self.done_by if started else self.first_by) - time.monotonic()


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
    exponential backoff (``backoff`` seconds, doubling, capped at 8 s), but only while the
    deadline leaves time. We retry ourselves rather than through the client so that tests can set
    ``backoff=0`` and so that a stream is never retried after it has already yielded text.
    ``timeout`` bounds one HTTP attempt (default: whatever the deadline leaves).

    A 200 reply that is no chat completion (an HTML page, not JSON, JSON of another shape) is a
    ``ChatModelError`` saying so; a stream that ends without a finish reason, or at the token
    limit, raises ``ReplyTruncated`` after its text.
    """

    def __init__(self, model: str, *, api_key: str | None = None, base_url: str | None = None,
                 timeout: float | None = None, max_retries: int = 2, backoff: float = 0.5,
                 client: Any = None, first_token_timeout: float = FIRST_TOKEN_TIMEOUT,
                 total_timeout: float = TOTAL_TIMEOUT):
        import openai  # lazy: only the `openai` backend pays for this import

        self._openai = openai
        self.name = model
        self.model = model
        self.first_token_timeout = first_token_timeout
        self.total_timeout = total_timeout
        self.timeout = timeout  # None: an attempt may last as long as the deadline leaves
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

    def deadline(self) -> Deadline:
        return Deadline.start(self.first_token_timeout, self.total_timeout)

    def stream(self, messages: list[dict], *, temperature: float = 0.0,
               max_tokens: int | None = None, deadline: Deadline | None = None) -> Iterator[str]:
        deadline = deadline or self.deadline()
        yield from _within(deadline, lambda stop: self._stream(messages, deadline, stop,
                                                               temperature, max_tokens),
                           self._late)

    def complete(self, messages: list[dict], *, temperature: float = 0.0,
                 max_tokens: int | None = None, deadline: Deadline | None = None,
                 **_: Any) -> str:
        """The whole reply. Inside an answer (``deadline`` given) it is due with the answer's
        first token, since the answer waits for it; alone, within the total timeout."""
        if deadline is None:
            start = self.deadline()
            deadline = Deadline(start.done_by, start.done_by, start.total_s, start.total_s)
        return "".join(_within(deadline, lambda stop: iter([self._complete(
            messages, deadline, stop, temperature, max_tokens)]), self._late))

    # -- internals ------------------------------------------------------------------------

    def _late(self, started: bool, deadline: Deadline) -> str:
        if started:
            what = f"did not finish its reply within {deadline.total_s:g} s"
        else:
            what = f"sent no reply within {deadline.first_s:g} s"
        return f"the chat server at {self.url} {what} (RAG_CHAT_TIMEOUT). {_WHAT_TO_DO}"

    def _not_a_completion(self, what: str) -> str:
        return (f"the chat server at {self.url} answered, but not with an OpenAI chat completion "
                f"({what}); check OPENAI_BASE_URL (it usually ends in /v1), or use "
                "`--backend extractive`")

    def _stream(self, messages, deadline: Deadline, stop: threading.Event, temperature,
                max_tokens) -> Iterator[str]:
        response = self._with_retries(messages, deadline, stop, stream=True,
                                      temperature=temperature, max_tokens=max_tokens)
        seen, finish = False, None
        try:
            for chunk in response:
                choices = getattr(chunk, "choices", None)
                if not isinstance(choices, list) or not choices:
                    continue  # some servers send a final usage-only chunk
                seen = True
                choice = choices[0]
                finish = getattr(choice, "finish_reason", None) or finish
                delta = getattr(getattr(choice, "delta", None), "content", None)
                if isinstance(delta, str) and delta:
                    yield delta
                if stop.is_set():
                    return
        except self._openai.OpenAIError as err:
            raise ChatModelError(self._stream_broke(err)) from err
        except Exception as err:  # the HTTP layer's own read errors are not wrapped by openai
            raise ChatModelError(self._stream_broke(err)) from err
        finally:
            close = getattr(response, "close", None)
            if close:
                close()
        if not seen:
            raise ChatModelError(self._not_a_completion(
                "the stream held no chat completion chunk: an HTML page, not JSON, or JSON of "
                "another shape"))
        if finish is None:
            raise ReplyTruncated(f"the reply from the chat server at {self.url} ended without a "
                                 "finish reason, so it may be cut off")
        if finish == "length":
            raise ReplyTruncated("the chat model's reply was cut off at its token limit")

    def _complete(self, messages, deadline: Deadline, stop: threading.Event, temperature,
                  max_tokens) -> str:
        response = self._with_retries(messages, deadline, stop, stream=False,
                                      temperature=temperature, max_tokens=max_tokens)
        try:
            content = response.choices[0].message.content
        except (AttributeError, IndexError, TypeError, KeyError) as err:
            raise ChatModelError(self._not_a_completion("no choices[0].message")) from err
        if content is not None and not isinstance(content, str):
            raise ChatModelError(self._not_a_completion("the message content is not text"))
        return content or ""

    def _with_retries(self, messages: list[dict], deadline: Deadline, stop: threading.Event,
                      **params: Any) -> Any:
        kwargs = {"model": self.model, "messages": messages, **params}
        if kwargs.get("max_tokens") is None:
            kwargs.pop("max_tokens", None)
        attempts = 0
        while True:
            attempts += 1
            # the caller stops waiting at the deadline; an attempt (each read of a stream) ends
            # by its own timeout, never later than the whole reply is due
            left = deadline.left(started=True)
            attempt_s = max(left if self.timeout is None else min(self.timeout, left), 0.05)
            try:
                return self.client.chat.completions.create(**kwargs, timeout=attempt_s)
            except self._openai.OpenAIError as err:
                wait = min(self.backoff * 2 ** (attempts - 1), 8.0)
                if (attempts > self.max_retries or not self._retryable(err) or stop.is_set()
                        or deadline.left(started=False) <= wait):
                    raise ChatModelError(self._describe(err, attempts, attempt_s)) from err
                time.sleep(wait)
            except ValueError as err:  # a 200 body that is not JSON
                raise ChatModelError(self._not_a_completion(f"not JSON: {_short(str(err), 80)}")) from err

    def _retryable(self, err: Exception) -> bool:
        o = self._openai
        if isinstance(err, (o.APIConnectionError, o.RateLimitError)):  # includes timeouts
            return True
        return isinstance(err, o.APIStatusError) and err.status_code >= 500

    def _describe(self, err: Exception, attempts: int, attempt_s: float) -> str:
        o = self._openai
        tries = f" ({attempts} attempt{'s' if attempts != 1 else ''})"
        if isinstance(err, o.APITimeoutError):
            what = f"the chat server at {self.url} timed out after {attempt_s:.3g}s{tries}"
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


def _within(deadline: Deadline, produce: Callable[[threading.Event], Iterator[str]],
            late: Callable[[bool, Deadline], str]) -> Iterator[str]:
    """The items of ``produce(stop)``, pulled in a helper thread, as long as the deadline allows.

    The caller waits at most until the first item is due, then until the end; past that it gets a
    ChatModelError and goes on. The helper is told to stop; its HTTP attempt ends by its own
    timeout, so an abandoned helper outlives the deadline by at most one attempt's timeout.
    """
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def pull() -> None:
        try:
            for item in produce(stop):
                items.put(("item", item))
                if stop.is_set():
                    return
            items.put(("end", None))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            items.put(("error", err))

    if deadline.left(started=False) <= 0:
        raise ChatModelError(late(False, deadline))
    threading.Thread(target=pull, daemon=True, name="rag-chat-model").start()
    started = False
    try:
        while True:
            try:
                kind, value = items.get(timeout=max(deadline.left(started), 0))
            except queue.Empty:
                raise ChatModelError(late(started, deadline)) from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            started = True
            yield value
    finally:
        stop.set()


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
               max_tokens: int | None = None, deadline: Deadline | None = None) -> Iterator[str]:
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
