"""A stand-in chat model for measuring rag with a language model in the loop.

A local OpenAI-compatible server (127.0.0.1) that records every chat request exactly and answers it
from a file of replies, keyed by the request's content:

    with StandIn(Record("eval/runs/chat-answers")) as url:     # OPENAI_BASE_URL=url
        ...  # rag asks; each request is kept; a known one is answered from replies.jsonl

A request with no reply yet is answered with ``PENDING`` (so a first pass records every request
without waiting); a language model that sees only the recorded request then writes its reply
(``python bench/chat_answers.py pending`` writes them out in batches, ``... import`` reads the
replies back). A later run whose requests are unchanged is rescored without new replies.

The record: ``requests.jsonl.xz`` (one line per distinct request: key, kind, model, max_tokens,
messages; ordered by the question asked, so that the same question's requests at several budgets
sit together and xz stores their shared passages once) and ``replies.jsonl`` (key, reply). Stdlib only; serves ``POST /v1/chat/completions``
(JSON, or server-sent events with ``"stream": true``) and ``GET /v1/models``.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PENDING = "PENDING"


def request_key(messages: list[dict]) -> str:
    """The request's identity: its messages, exactly (roles and contents)."""
    canonical = json.dumps([[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:20]


def asked(request: dict) -> str:
    """The question a request asks (the same question at several budgets is one question)."""
    user = request["messages"][-1]["content"] if request.get("messages") else ""
    found = re.search(r"^Question: (.*)$", user, re.M)
    return found.group(1) if found else user[-300:]


class Record:
    """Requests and replies of one measurement, on disk under ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.requests_path = self.folder / "requests.jsonl.xz"
        self.replies_path = self.folder / "replies.jsonl"
        self.requests: dict[str, dict] = {}
        self.replies: dict[str, str] = {}
        self._lock = threading.Lock()
        self._new = False
        self.asked: set[str] = set()   # the keys requested since this record was opened
        if self.requests_path.exists():
            with lzma.open(self.requests_path, "rt", encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        row = json.loads(line)
                        self.requests[row["key"]] = row
        if self.replies_path.exists():
            for line in self.replies_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.replies[row["key"]] = row["reply"]

    def answer(self, body: dict) -> tuple[str, str]:
        """(key, reply) for a chat request; the request is recorded if it is new."""
        messages = body.get("messages") or []
        key = request_key(messages)
        with self._lock:
            self.asked.add(key)
            if key not in self.requests:
                system = next((m.get("content", "") for m in messages if m.get("role") == "system"), "")
                kind = "judge" if system.startswith("You grade") else "answer"
                self.requests[key] = {"key": key, "kind": kind, "model": body.get("model"),
                                      "max_tokens": body.get("max_tokens"), "messages": messages}
                self._new = True
            return key, self.replies.get(key, PENDING)

    def add_replies(self, replies: dict[str, str]) -> int:
        """Keep replies to recorded requests; returns how many were new."""
        added = 0
        with self._lock:
            for key, text in replies.items():
                if key in self.requests and self.replies.get(key) != text:
                    self.replies[key] = text
                    added += 1
            self._write_replies()
        return added

    def _write_replies(self) -> None:
        rows = [json.dumps({"key": k, "reply": v}, ensure_ascii=False) for k, v in sorted(self.replies.items())]
        self.replies_path.write_text("\n".join(rows) + ("\n" if rows else ""), encoding="utf-8")

    def save(self) -> None:
        with self._lock:
            if not self._new:
                return
            tmp = self.requests_path.with_suffix(".tmp")
            with lzma.open(tmp, "wt", encoding="utf-8", preset=9 | lzma.PRESET_EXTREME) as f:
                for row in sorted(self.requests.values(), key=lambda r: (r["kind"], asked(r), r["key"])):
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
            tmp.replace(self.requests_path)
            self._new = False

    def keep_only_asked(self) -> int:
        """Forget the requests (and their replies) that this run did not ask: what a change to
        the pipeline left behind. Returns how many went."""
        with self._lock:
            stale = set(self.requests) - self.asked
            for key in stale:
                self.requests.pop(key)
                self.replies.pop(key, None)
            if stale:
                self._new = True
                self._write_replies()
        self.save()
        return len(stale)

    def pending(self, kind: str | None = None) -> list[dict]:
        return [r for k, r in sorted(self.requests.items())
                if k not in self.replies and (kind is None or r["kind"] == kind)]


class StandIn:
    """The server, in a background thread, for as long as the ``with`` block runs."""

    def __init__(self, record: Record, port: int = 0):
        self.record = record
        self.port = port
        self.server: ThreadingHTTPServer | None = None

    def __enter__(self) -> str:
        record = self.record

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._json(200, {"object": "list", "data": [{"id": "stand-in", "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    return self._json(400, {"error": {"message": "not JSON"}})
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    return self._json(404, {"error": {"message": "not found"}})
                _, text = record.answer(body)
                model = body.get("model") or "stand-in"
                if not body.get("stream"):
                    return self._json(200, {"id": "standin", "object": "chat.completion", "created": int(time.time()),
                                            "model": model, "choices": [{"index": 0, "finish_reason": "stop",
                                                                         "message": {"role": "assistant", "content": text}}]})
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.end_headers()
                pieces = [text[i:i + 24] for i in range(0, len(text), 24)] or [""]
                for i, piece in enumerate(pieces):
                    last = i == len(pieces) - 1
                    chunk = {"id": "standin", "object": "chat.completion.chunk", "created": int(time.time()),
                             "model": model, "choices": [{"index": 0, "delta": {"content": piece},
                                                          "finish_reason": "stop" if last else None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.write(b"data: [DONE]\n\n")

            def _json(self, code: int, obj: dict):
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True, name="chat-standin").start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        self.record.save()
