"""A tiny OpenAI-compatible HTTP server for tests: real sockets, scripted behaviour.

    server = OpenAIServer().start()
    server.script(status(500), reply("Hi [P1]."))  # first request 500, second succeeds
    client = OpenAIChatModel("m", base_url=server.url, api_key="k", backoff=0)
    server.requests   # what it received: [{"method", "path", "body", "headers" (lower-cased)}]
    server.stop()

Each request takes the next scripted action; when the script is empty, ``server.default`` runs.
Serves ``POST /v1/chat/completions`` (JSON, or server-sent events when ``"stream": true``) and
``GET /v1/models``. Stdlib only.

The faults a misbehaving model server plays (issue 9.5, 9.6):

    hang()               accept the request, never answer (until the server stops)
    drip(text, every=s)  stream one small piece every ``s`` seconds (a slow drip)
    garbage(body, type)  HTTP 200 with a body that is no chat completion (HTML, not JSON, wrong shape)
    status(429|500)      an error status
    cut(text)            stream part of the answer, then drop the connection mid-body
    unfinished(text)     stream the answer and [DONE], but no chunk carries a finish reason
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Action:
    kind: str                    # "reply" | "status" | "sleep" | "cut" | "drip" | "garbage" | "unfinished"
    text: str = ""
    code: int = 200
    seconds: float = 0.0
    chunk_size: int = 5
    content_type: str = "application/json"


def reply(text: str, chunk_size: int = 5) -> Action:
    return Action("reply", text=text, chunk_size=chunk_size)


def status(code: int, message: str = "scripted failure") -> Action:
    return Action("status", text=message, code=code)


def sleep(seconds: float, text: str = "too late") -> Action:
    """Wait ``seconds`` before answering (longer than the client's timeout, in tests)."""
    return Action("sleep", text=text, seconds=seconds)


def cut(text: str) -> Action:
    """Stream ``text``, then drop the connection before the body is complete."""
    return Action("cut", text=text)


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # many clients at once (the default backlog of 5 refuses them)


def hang() -> Action:
    """Accept the request and never answer (the handler waits until the server stops)."""
    return Action("sleep", seconds=3600.0)


def drip(text: str, every: float, chunk_size: int = 2) -> Action:
    """Stream ``text`` ``chunk_size`` characters at a time, one piece every ``every`` seconds."""
    return Action("drip", text=text, seconds=every, chunk_size=chunk_size)


def garbage(body: str, content_type: str = "text/html") -> Action:
    """HTTP 200 with ``body`` as it is, streaming or not: no chat completion in it."""
    return Action("garbage", text=body, content_type=content_type)


def unfinished(text: str) -> Action:
    """Stream ``text`` and ``[DONE]``, with no finish reason on any chunk."""
    return Action("unfinished", text=text)


class OpenAIServer:
    def __init__(self, default: Action | None = None):
        self.default = default or reply("Hello from the test server.")
        self.actions: deque[Action] = deque()
        self.requests: list[dict] = []
        self._stop = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def script(self, *actions: Action) -> "OpenAIServer":
        self.actions.extend(actions)
        return self

    def next_action(self) -> Action:
        return self.actions.popleft() if self.actions else self.default

    def start(self) -> "OpenAIServer":
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes handlers that are sleeping on purpose
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"].endswith("/chat/completions")]


def _completion(body: dict, text: str) -> dict:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model", "test-model"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _chunk(body: dict, delta: dict, finish: str | None = None) -> bytes:
    data = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body.get("model", "test-model"),
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(data)}\n\n".encode()


def _make_handler(server: OpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def _send(self, code: int, payload: bytes, content_type: str = "application/json",
                  length: int | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload) if length is None else length))
            self.end_headers()
            self.wfile.write(payload)
            self.wfile.flush()

        def do_GET(self) -> None:
            server.requests.append({"method": "GET", "path": self.path, "body": None,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})
            if self.path.rstrip("/").endswith("/models"):
                data = {"object": "list", "data": [{"id": "test-model", "object": "model",
                                                     "created": 0, "owned_by": "tests"}]}
                self._send(200, json.dumps(data).encode())
            else:
                self._send(404, b'{"error": {"message": "not found"}}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            server.requests.append({"method": "POST", "path": self.path, "body": body,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            action = server.next_action()
            try:
                self._act(action, body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout); that is the point of some tests

        def _act(self, action: Action, body: dict) -> None:
            if action.kind == "status":
                err = {"error": {"message": action.text, "type": "server_error",
                                 "code": action.code}}
                self._send(action.code, json.dumps(err).encode())
                return
            if action.kind == "garbage":
                self._send(200, action.text.encode(), action.content_type)
                return
            if action.kind == "sleep" and server._stop.wait(action.seconds):
                return
            if action.kind == "drip":
                self._drip(action, body)
                return
            if not body.get("stream"):
                self._send(200, json.dumps(_completion(body, action.text)).encode())
                return
            pieces = [_chunk(body, {"role": "assistant", "content": ""})]
            text = action.text
            step = max(1, action.chunk_size)
            pieces += [_chunk(body, {"content": text[i: i + step]})
                       for i in range(0, len(text), step)]
            if action.kind == "cut":
                payload = b"".join(pieces)
                # promise more bytes than we send, then close: the client sees a broken body
                self._send(200, payload, "text/event-stream", length=len(payload) + 1000)
                self.close_connection = True
                return
            if action.kind != "unfinished":
                pieces.append(_chunk(body, {}, "stop"))
            pieces.append(b"data: [DONE]\n\n")
            self._send(200, b"".join(pieces), "text/event-stream")

        def _drip(self, action: Action, body: dict) -> None:
            """Chunked transfer, one piece per ``action.seconds``: the client sees a live stream."""
            self.send_response(200)
            streaming = bool(body.get("stream"))
            self.send_header("Content-Type", "text/event-stream" if streaming else "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def send(data: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            text, step = action.text, max(1, action.chunk_size)
            if not streaming:  # a non-streaming reply trickled out byte by byte
                payload = json.dumps(_completion(body, text)).encode()
                pieces = [payload[i: i + step * 8] for i in range(0, len(payload), step * 8)]
            else:
                pieces = [_chunk(body, {"content": text[i: i + step]}) for i in range(0, len(text), step)]
                pieces += [_chunk(body, {}, "stop"), b"data: [DONE]\n\n"]
            for piece in pieces:
                send(piece)
                if server._stop.wait(action.seconds):
                    return
            send(b"")

    return Handler
