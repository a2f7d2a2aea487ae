"""``rag questions``: listeners' questions for your own transcripts, written by the configured chat
model, checked by the corpus validator, one file per episode.

    rag questions ~/my-transcripts --out ~/my-questions     # then:
    rag train ~/my-transcripts --readers --corpus ~/my-questions --out ~/my-model

Each transcript is sent whole with ``prompts/readers.md`` (the brief the project's own corpus was
written with). Every item the model writes is checked against the transcript
(``rag.evaluation.readers``): one that fails is dropped, and the episode's file is written, atomically,
only when enough items pass. Episodes whose file exists are skipped, so a stopped run resumes where
it stopped.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

MIN_KEPT = 5            # an episode's file is written when at least this many items pass
MAX_WORDS = 40000       # a transcript longer than this is not sent (a chat model's context)


@dataclass(frozen=True)
class Outcome:
    episode: str
    written: int            # items kept (0: no file written)
    dropped: int
    reason: str = ""        # why nothing was written, or what was dropped


def parse_reply(reply: str) -> list[dict]:
    """The JSON objects of a reply: one a line, code fences and chatter around them ignored."""
    out = []
    for line in reply.splitlines():
        line = line.strip().rstrip(",")
        if line.startswith("{") and line.endswith("}"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                out.append(obj)
    return out


def keep_valid(items: list[dict], transcript: str, episode: str) -> tuple[list[dict], list[str]]:
    """The items that pass the validator on their own (ids made unique and prefixed), and why each
    other one was dropped."""
    from ..evaluation import readers as R

    kept, dropped, seen = [], [], set()
    for n, it in enumerate(items, 1):
        it = dict(it, episode=episode)
        iid = str(it.get("id") or f"{episode}-{n:02d}")
        if not iid.startswith(episode + "-"):
            iid = f"{episode}-{iid}"
        while iid in seen:
            iid += "x"
        it["id"] = iid
        problems = R.validate_items([it], transcript, episode, complete=False)
        if problems:
            dropped.append(problems[0])
        else:
            kept.append(it)
            seen.add(iid)
    return kept, dropped


def write_episode(chat_model, episode: str, transcript: str, out: Path) -> Outcome:
    from ..prompts import load_prompt

    if len(transcript.split()) > MAX_WORDS:
        return Outcome(episode, 0, 0, f"longer than {MAX_WORDS} words; not sent")
    messages = load_prompt("readers").render(episode=episode, transcript=transcript)
    reply = chat_model.complete(messages, temperature=0.7)
    kept, dropped = keep_valid(parse_reply(reply), transcript, episode)
    if len(kept) < MIN_KEPT:
        why = f"only {len(kept)} of {len(kept) + len(dropped)} items passed the validator"
        return Outcome(episode, 0, len(dropped), why + (f" (e.g. {dropped[0]})" if dropped else ""))
    target = out / f"{episode}.jsonl"
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in kept), encoding="utf-8")
    os.replace(tmp, target)
    return Outcome(episode, len(kept), len(dropped), dropped[0] if dropped else "")


def write_questions(source: Path, out: Path, chat_model, *, limit: int | None = None,
                    progress: Callable[[str], None] | None = None) -> list[Outcome]:
    """A question file for every transcript of ``source`` (a folder or an archive) that has none in
    ``out`` yet. A chat model error on one episode is reported and the run goes on."""
    from ..errors import ChatModelError
    from ..evaluation.readers import transcripts

    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[Outcome] = []
    t0, done = time.monotonic(), 0
    for episode, text in transcripts(None, source):
        if (out / f"{episode}.jsonl").exists():
            continue
        if limit is not None and done >= limit:
            break
        try:
            outcome = write_episode(chat_model, episode, text, out)
        except ChatModelError as err:
            outcome = Outcome(episode, 0, 0, f"the chat model failed: {err}")
        outcomes.append(outcome)
        done += 1
        if progress:
            per = (time.monotonic() - t0) / done
            state = (f"{outcome.written} questions" + (f", {outcome.dropped} dropped" if outcome.dropped else "")
                     if outcome.written else f"skipped: {outcome.reason}")
            progress(f"{episode}: {state}  ({done} done, {per:.0f} s each)")
    return outcomes


def run(args) -> int:
    from ..chat_models import chat_model_from_env
    from ..errors import InputError

    source = Path(args.source).expanduser()
    if not source.exists():
        raise InputError(f"no transcripts at {source}: give a folder of .md transcripts or an archive")
    model = chat_model_from_env()
    if model is None:
        raise InputError("rag questions needs a chat model: set OPENAI_API_KEY (or OPENAI_BASE_URL for "
                         "a local OpenAI-compatible server) and RAG_CHAT_MODEL")
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be 1 or more")
    out = Path(args.out).expanduser()
    outcomes = write_questions(source, out, model, limit=args.limit,
                               progress=lambda line: print(line, file=sys.stderr, flush=True))
    written = [o for o in outcomes if o.written]
    print(f"{len(written)} episodes written ({sum(o.written for o in written)} questions), "
          f"{len(outcomes) - len(written)} skipped -> {out}")
    return 0 if written or not outcomes else 1


def add_parser(sub) -> None:
    sp = sub.add_parser("questions", help="write listeners' questions for your transcripts with the "
                        "chat model (to train on: rag train --readers --corpus)")
    sp.add_argument("source", help="a folder of .md transcripts or an archive of them")
    sp.add_argument("--out", required=True, help="the folder the question files go to (resumes there)")
    sp.add_argument("--limit", type=int, default=None, help="at most this many new episodes")
    sp.set_defaults(func=run)


