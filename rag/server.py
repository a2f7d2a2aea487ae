"""`rag serve`: the HTTP API, an OpenAI-compatible chat endpoint and the web chat page.

    GET  /                      the web chat page (rag/web/index.html; no CDN, works offline)
    GET  /health                {"status": "ok", "index", "backend", "chunks"}
    GET  /episodes?show=        {"episodes": [{"id", "show", "number", "title", "url", "hosts", "guests", ...}]}
    GET  /chapters              {"episode": {...}, "chapters": [{"index", "title", "start", "start_s", "sponsor"}]}
    POST /search                {query, k?, chapter?, speaker?, start_s?, end_s?, show?, episode?} -> {"query", "passages"}
    POST /ask                   {question, k?, history?, backend?, show?, episode?} -> Answer.to_json()
    GET  /v1/models             one model, MODEL_ID
    POST /v1/chat/completions   OpenAI-compatible; the last user message is the question, earlier
                                user/assistant pairs are the history; ``stream: true`` sends SSE
                                chunks whose last one carries ``citations``, ``passages``, ``answer``

A thin layer over rag.api: one Assistant, loaded once and shared by the worker threads (retrieval
is read-only). Every error is JSON in OpenAI's shape ``{"error": {"message", "type", "code"}}``:
401 without the bearer key (when RAG_API_KEY is set), 413 for a body over the limit, 415 for a
body that is not sent as JSON, 422 for bad input, 503 for an index problem, 502 for a chat-model failure, 500 (no traceback) otherwise.
FastAPI and uvicorn are imported only inside ``create_app`` / ``run``. (No ``from __future__ import
annotations`` here: FastAPI must see the request models defined inside ``create_app``.)
"""

import hmac
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from .config import DEFAULT_INDEX
from .errors import ChatModelError, IndexError_, InputError, ModelError, RagError

MODEL_ID = "rag-practical-ai-260"
EPISODE_URL = "https://changelog.com/practicalai/260"
WEB_DIR = Path(__file__).resolve().parent / "web"
PUBLIC_PATHS = ("/", "/health", "/favicon.ico")   # reachable without the bearer key


# --- errors ----------------------------------------------------------------------------------

def error_body(message: str, type_: str, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": type_, "code": code}}


def _status_for(err: RagError) -> tuple[int, str, str]:
    if isinstance(err, InputError):
        return 422, "invalid_request_error", "invalid_input"
    if isinstance(err, IndexError_):
        return 503, "index_error", "index_unavailable"
    if isinstance(err, ChatModelError):
        return 502, "chat_model_error", "chat_model_failed"
    if isinstance(err, ModelError):
        return 503, "model_error", "model_unavailable"
    return 500, "server_error", "rag_error"


class _Guard:
    """Pure ASGI middleware: the bearer key, then the body limit (the body is read here, once)."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int):
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.api_key and not self._public(scope) and not self._authorized(scope):
            return await _send_json(send, 401, error_body(
                "missing or wrong API key: send the header 'Authorization: Bearer <RAG_API_KEY>'",
                "unauthorized", "invalid_api_key"), {"www-authenticate": "Bearer"})
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        too_big = error_body(f"the request body is larger than {self.max_body_bytes} bytes",
                             "invalid_request_error", "request_too_large")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _send_json(send, 413, too_big)
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        media = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            return await _send_json(send, 415, error_body(
                f"the request body must be JSON sent with 'Content-Type: application/json', "
                f"not {media}", "invalid_request_error", "unsupported_media_type"))
        # Read the whole body (chunked uploads have no Content-Length), then replay it.
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                return await _send_json(send, 413, too_big)
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    @staticmethod
    def _public(scope) -> bool:
        return scope["method"] in ("GET", "HEAD") and scope["path"] in PUBLIC_PATHS

    def _authorized(self, scope) -> bool:
        value = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, token = value.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode())


async def _send_json(send, status: int, body: dict, extra: dict | None = None) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


# --- request values ----------------------------------------------------------------------------

def _content(message: dict, i: int) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if content is None:
        return ""
    raise InputError(f"messages[{i}].content must be a string")


def split_messages(messages: list[dict]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message is the question; earlier user/assistant messages pair into history.

    System messages are ignored; a user message not followed by an assistant reply is dropped.
    """
    said = [(m.get("role"), _content(m, i)) for i, m in enumerate(messages)
            if m.get("role") in ("user", "assistant")]
    if not said:
        raise InputError(("messages holds no user message" if messages else "messages is empty")
                         + "; send the question as the last message, with role \"user\"")
    if said[-1][0] != "user":
        raise InputError("the last message must come from the user: it is the question")
    turns = [(q, a) for (r1, q), (r2, a) in zip(said[:-1], said[1:])
             if r1 == "user" and r2 == "assistant"]
    return said[-1][1], turns


def _check_backend(backend: str | None) -> str | None:
    if backend not in (None, "auto", "extractive", "openai"):
        raise InputError(f"unknown backend {backend!r}; choose extractive or openai")
    return None if backend in (None, "auto", "openai") else backend


# --- the app ---------------------------------------------------------------------------------

def create_app(assistant, *, api_key: str | None = None, max_body_bytes: int = 64_000,
               model_id: str = MODEL_ID, cors_origins: tuple[str, ...] = (),
               model_workers: int = 100):
    """A FastAPI app serving ``assistant`` (an rag.api.Assistant, shared by all requests).

    ``cors_origins`` (``RAG_CORS_ORIGINS``): web pages on these origins may call the API from the
    browser; none by default, since the same-origin page at ``/`` needs no CORS.
    ``model_workers``: threads for answers that call the chat model (each waits on the model, up
    to its deadline), apart from the default pool that serves everything else.
    """
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    AskBody, SearchBody, ChatBody = _bodies()
    app = FastAPI(title="rag", version="1", docs_url="/docs", redoc_url=None,
                  description="Ask the Practical AI #260 interview; answers cite [MM:SS].")
    app.state.assistant = assistant

    _error_handlers(app)
    _index_routes(app, assistant)

    # Answers that call the chat model run on their own threads (``threads.ModelThreads``), so a
    # model server that hangs cannot take the workers that serve /health (on the event loop),
    # /search and extractive answers (the default thread pool).
    from .inputs import check_history
    from .threads import ModelThreads, calls_model as _calls_model

    threads = ModelThreads(model_workers)
    run, pull = threads.run, threads.pull

    def calls_model(backend, history) -> bool:
        return _calls_model(assistant, backend, history)

    # -- the library API -------------------------------------------------------------------

    @app.post("/search")
    def search(body: SearchBody):
        query = body.query if body.query is not None else body.question
        if query is None:
            raise InputError("send \"query\" (or \"question\"): the text to search for")
        times = [_seconds("start_s", body.start_s), _seconds("end_s", body.end_s)]
        hits = assistant.search(query, k=body.k, chapter=body.chapter, speaker=body.speaker,
                                start_s=times[0], end_s=times[1], show=body.show, episode=body.episode,
                                per_episode=body.per_episode)
        return {"query": query, "passages": [h.to_json() for h in hits]}

    @app.post("/ask")
    async def ask(body: AskBody):
        history, backend = check_history(body.history), _check_backend(body.backend)
        answer = await run(lambda: assistant.ask(body.question, k=body.k, history=history,
                                                 backend=backend, show=body.show, episode=body.episode,
                                                 per_episode=body.per_episode),
                           calls_model(backend, history))
        return JSONResponse(answer.to_json(), headers=_notes_header(answer.notes))

    # -- OpenAI-compatible -----------------------------------------------------------------

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [
            {"id": model_id, "object": "model", "created": 0, "owned_by": "rag"}]}

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatBody):
        question, history = split_messages([m.model_dump() for m in body.messages])
        backend = _check_backend(body.backend)
        uses_model = calls_model(backend, history)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        scoped = {"chapter": body.chapter} if body.chapter is not None else {}
        events = assistant.stream(question, k=body.k, history=history, backend=backend, **scoped)
        if not body.stream:
            from .answer.base import collect

            answer = await run(lambda: collect(events), uses_model)
            return JSONResponse({
                "id": cid, "object": "chat.completion", "created": created, "model": model_id,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": answer.text}}],
                "usage": _usage(body.messages, answer),
                "citations": [c.to_json() for c in answer.citations],
                "passages": [h.to_json() for h in answer.hits],
                "refused": answer.refused, "backend": answer.backend,
                "notes": list(answer.notes), **_standalone(answer)},
                headers=_notes_header(answer.notes))
        # Pull the first event here so that bad input is a 4xx, not a broken stream.
        first = await run(lambda: next(events), uses_model)
        usage_of = ((lambda answer: _usage(body.messages, answer))
                    if (body.stream_options or {}).get("include_usage") else None)
        return StreamingResponse(pull(_sse(cid, created, model_id, first, events, usage_of),
                                      uses_model),
                                 media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})

    _middleware(app, api_key, max_body_bytes, cors_origins)
    return app



def _bodies():
    """The request bodies of /ask, /search and /v1/chat/completions (pydantic models)."""
    from typing import Dict, List, Optional, Union

    from pydantic import BaseModel, ConfigDict, StrictInt, model_validator

    from .text import clean_json

    class _Body(BaseModel):
        model_config = ConfigDict(extra="ignore")

        @model_validator(mode="before")
        @classmethod
        def _unicode(cls, data):  # lone surrogates ("\ud800" is valid JSON) become U+FFFD
            return clean_json(data)

    class AskBody(_Body):
        question: str
        k: StrictInt = 5
        history: Optional[List[Any]] = None
        backend: Optional[str] = None
        show: Optional[str] = None
        episode: Optional[str] = None
        per_episode: Optional[StrictInt] = None

    class SearchBody(_Body):
        query: Optional[str] = None
        question: Optional[str] = None
        k: StrictInt = 5
        chapter: Optional[str] = None
        speaker: Optional[str] = None
        start_s: Optional[Union[float, str]] = None
        end_s: Optional[Union[float, str]] = None
        show: Optional[str] = None
        episode: Optional[str] = None
        per_episode: Optional[StrictInt] = None

    class Message(_Body):
        role: str
        content: Union[str, List[Any], None] = None

    class ChatBody(_Body):
        messages: List[Message]
        model: Optional[str] = None
        stream: bool = False
        stream_options: Optional[Dict[str, Any]] = None
        k: StrictInt = 5
        backend: Optional[str] = None
        chapter: Optional[str] = None      # rag's own: search this chapter only (the web page's outline)

    return AskBody, SearchBody, ChatBody


def _error_handlers(app) -> None:
    """Every error as an OpenAI-style JSON body: rag's own with their status, invalid requests 422,
    unknown paths and methods 404/405, anything unexpected 500 (the details go to the log only)."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(RagError)
    async def _rag_error(request: Request, err: RagError):
        status, type_, code = _status_for(err)
        return JSONResponse(error_body(str(err), type_, code), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        errors = err.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            message, code = "the request body is not valid JSON", "invalid_json"
        else:
            parts = []
            for e in errors[:5]:
                where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
                parts.append(f"{where}: {e.get('msg', 'invalid')}")
            message, code = "; ".join(parts), "invalid_request"
        return JSONResponse(error_body(message, "invalid_request_error", code), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException):
        type_ = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
        return JSONResponse(error_body(str(err.detail), type_, None), status_code=err.status_code,
                            headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception):
        return JSONResponse(error_body(f"internal error ({type(err).__name__}); see the server log",
                                       "server_error", "internal_error"), status_code=500)


def _index_routes(app, assistant) -> None:
    """The page, and what the index holds: /, /health, /episodes, /chapters."""
    from typing import Optional

    from fastapi.responses import HTMLResponse, Response

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"),
                            headers={"cache-control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():
        return Response(status_code=204)

    @app.get("/health")
    async def health():
        return {"status": "ok", "index": assistant.name, "backend": assistant.backend,
                "chunks": len(assistant.index.chunks)}

    @app.get("/episodes")
    def episodes(show: Optional[str] = None):
        return {"episodes": assistant.episodes(show=show)}

    @app.get("/chapters")
    def chapters():
        episodes = [t.get("episode", {}) for t in assistant.transcripts]
        episode = dict(episodes[0]) if episodes else {}
        if not episode.get("url") and episode.get("id") == DEFAULT_INDEX:
            episode["url"] = EPISODE_URL
        return {"episode": episode,
                "chapters": [c.to_json() for c in assistant.chapters]}


def _middleware(app, api_key, max_body_bytes: int, cors_origins) -> None:
    app.add_middleware(_Guard, api_key=api_key, max_body_bytes=max_body_bytes)
    if cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        # Added last, so it is outermost: a preflight (which carries no bearer key) is answered here.
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_origins),
                           allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["authorization", "content-type"])


def _seconds(name: str, value):
    """A time in a request body: seconds, or "MM:SS" / "H:MM:SS"."""
    from .timecode import parse_time

    try:
        return parse_time(value) if isinstance(value, str) else value
    except ValueError as e:
        raise InputError(f"{name}: {e}") from None


def _usage(messages, answer) -> dict:
    """OpenAI-style token counts. With a chat model, what it was really sent and wrote for this
    answer (the retrieved passages and the prompt included: ``Answer.usage``, counted in its
    encoding), which is what the deployment pays for. Without one nothing is billed, so the count
    is of what the client sent and received (cl100k_base), for its own budgeting."""
    from .tokens import count_tokens

    if answer.usage is not None:
        prompt, completion = answer.usage.prompt_tokens, answer.usage.completion_tokens
    else:
        sent = "\n".join(m.content if isinstance(m.content, str) else json.dumps(m.content)
                         for m in messages if m.content is not None)
        prompt, completion = count_tokens(sent), count_tokens(answer.text)
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _sse(cid: str, created: int, model_id: str, first, events: Iterator,
         usage_of=None) -> Iterator[str]:
    """``chat.completion.chunk`` events; the last carries the checked answer and its citations,
    followed (when the client set ``stream_options.include_usage``) by a usage-only chunk."""
    from .types import Answer

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        obj = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model_id,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    try:
        for event in _chain(first, events):
            if isinstance(event, Answer):
                yield chunk({}, "stop", answer=event.text, refused=event.refused,
                            backend=event.backend, notes=list(event.notes),
                            citations=[c.to_json() for c in event.citations],
                            passages=[h.to_json() for h in event.hits], **_standalone(event))
                if usage_of is not None:
                    obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                           "model": model_id, "choices": [], "usage": usage_of(event)}
                    yield f"data: {json.dumps(obj)}\n\n"
            elif event:
                yield chunk({"content": event})
    except RagError as err:  # mid-stream: the status line is gone, so the error is an event
        status, type_, code = _status_for(err)
        yield f"data: {json.dumps(error_body(str(err), type_, code))}\n\n"
    except Exception as err:  # noqa: BLE001 - never a traceback to the client
        print(f"rag serve: stream failed: {type(err).__name__}: {err}", file=sys.stderr)
        yield f"data: {json.dumps(error_body('internal error; see the server log', 'server_error', 'internal_error'))}\n\n"
    yield "data: [DONE]\n\n"


def _notes_header(notes) -> dict:
    """``x-rag-notes``: the answer's notes (fallbacks, removed citations) as a JSON list, for
    clients that read only the standard fields. ASCII, one line."""
    return {"x-rag-notes": json.dumps(list(notes))} if notes else {}


def _standalone(answer) -> dict:
    """The condensed question of a follow-up, when it differs from what was asked."""
    q = answer.standalone_question
    return {"standalone_question": q} if q and q != answer.question else {}


def _chain(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


# --- running it ------------------------------------------------------------------------------

class BackgroundServer:
    """uvicorn in a daemon thread on an already-bound loopback socket (tests and benchmarks).

        with BackgroundServer(app) as url: httpx.get(url + "/health")
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        import socket

        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       daemon=True, name="rag-server")

    def start(self, timeout: float = 10.0) -> str:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:  # poll /health rather than sleeping a fixed time
            try:
                if httpx.get(self.url + "/health", timeout=1.0).status_code == 200:
                    return self.url
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the server at {self.url} did not answer /health in {timeout:g}s")

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run(args) -> int:
    # (BLAS threading for query embeddings is limited where it matters, in rag/minilm.py.)
    import uvicorn

    from .surface import load_assistant

    api_key = os.environ.get("RAG_API_KEY") or None
    host = getattr(args, "host", None) or "127.0.0.1"
    port = getattr(args, "port", None)
    port = 8000 if port is None else int(port)
    sock = _bind(host, port)  # first: a bad --host or --port is one clear line, before any build
    try:
        assistant = load_assistant(args, "rag serve")
    except BaseException:
        sock.close()
        raise
    if not api_key and host not in ("127.0.0.1", "localhost", "::1"):
        print(f"rag serve: warning: listening on {host} without RAG_API_KEY; anyone who can reach "
              "this port can use it", file=sys.stderr)
    cors = tuple(o.strip() for o in os.environ.get("RAG_CORS_ORIGINS", "").split(",") if o.strip())
    app = create_app(assistant, api_key=api_key, cors_origins=cors)
    port = sock.getsockname()[1]  # --port 0 shows the real one
    shown = f"[{host}]" if ":" in host else host
    print(f"rag serve: index {assistant.name!r}, {assistant.backend} answers"
          f"{', bearer key required' if api_key else ''}\n"
          f"rag serve: open http://{shown}:{port}/  (OpenAI base_url http://{shown}:{port}/v1)",
          file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _bind(host: str, port: int):
    import errno
    import socket

    from .errors import InputError, RagError

    if not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port; choose one from 1 to 65535 "
                         "(--port 0 picks a free one)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise InputError(f"--host {host} is not an address or host name this machine can resolve "
                         f"({getattr(e, 'strerror', None) or e}); use e.g. 127.0.0.1, ::1 or 0.0.0.0") from e
    family, _, proto, _, address = infos[0]
    try:
        # The protocol matters: asyncio sets TCP_NODELAY only on sockets whose proto is TCP, and
        # accepted sockets inherit it. With proto 0, Nagle held each response's body until the
        # client's delayed ACK: ~40 ms added to every request on a kept-alive connection.
        sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise RagError(f"{host}:{port} is already in use: stop the other server or choose "
                           "another --port (--port 0 picks a free one)") from e
        if e.errno == errno.EADDRNOTAVAIL:
            raise InputError(f"--host {host} is not an address of this machine; use e.g. "
                             "127.0.0.1 (this machine only) or 0.0.0.0 (every interface)") from e
        if e.errno == errno.EACCES:
            raise RagError(f"{host}:{port} needs more privileges to open; choose a --port above "
                           "1023 (--port 0 picks a free one)") from e
        raise RagError(f"{host}:{port} cannot be opened ({e.strerror or e}); choose another "
                       "--host or --port") from e
    return sock
