"""The `rag` command line: a thin layer over rag.api. Output shapes here are a contract.

Heavy modules (numpy, faiss, torch, openai) are imported inside the commands that need them, so
`rag --help` and `rag transcript` stay fast.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import textwrap
import time

from .errors import InputError, RagError
from .progress import progress_printer
from .text import clean_text


def _assistant(args, backend: str = "extractive"):
    from .surface import load_assistant

    # A notice such as "no chat model configured" travels in each Answer's notes.
    return load_assistant(args, backend=backend, notice=False)


def _read_batch(path: str) -> list[tuple[object, str]]:
    """Questions from a file: plain lines, or JSON objects with "question" and optional "id".
    Undecodable bytes and lone surrogates become U+FFFD (``rag.text``), as everywhere."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InputError(f"cannot read batch file {path}: {e.strerror}") from e
    items = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise InputError(f"{path}:{n}: not valid JSON ({e.msg})") from e
            if "meta" in obj:
                continue
            if not isinstance(obj.get("question"), str):
                raise InputError(f"{path}:{n}: a JSON line needs a \"question\" string")
            item_id = obj.get("id", n)
            items.append((clean_text(item_id) if isinstance(item_id, str) else item_id,
                          clean_text(obj["question"])))
        else:
            items.append((n, line.strip()))
    return items


def _print_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def _where(episode: str | None, chapter: str | None) -> str:
    """"episode · chapter · " for a source line; parts that are unknown or not needed are left out."""
    return "".join(f"{part} · " for part in (episode, chapter) if part)


def _passage_lines(hits, width: int = 100, full: bool = False, show_episode: bool = False) -> list[str]:
    lines = []
    for h in hits:
        c = h.chunk
        where = f"[{c.episode} {c.start}]" if show_episode else f"[{c.start}]"
        link = f" · {c.url}" if show_episode and c.url else ""
        head = f"{where} {_where(c.episode_title if show_episode else None, c.chapter)}{', '.join(c.speakers)}{link}"
        lines.append(head)
        body = c.text if full else textwrap.shorten(c.text.replace("\n", " "), 280, placeholder=" …")
        lines.extend(textwrap.wrap(body, width, initial_indent="    ", subsequent_indent="    "))
    return lines


def source_runs(citations) -> list[list]:
    """The citations as the sources list shows them: each run of consecutive quotes from one
    passage and one speaker is one source (``~[01:40]–~[02:03] chapter · speaker``), not a line
    per sentence; a time cited twice is listed once."""
    runs: list[list] = []
    seen = set()
    for c in citations:
        if (c.passage_id, c.start_s) in seen:
            continue
        seen.add((c.passage_id, c.start_s))
        last = runs[-1][-1] if runs else None
        if last is not None and (last.passage_id, last.speaker) == (c.passage_id, c.speaker) \
                and c.start_s >= last.start_s:
            runs[-1].append(c)
        else:
            runs.append([c])
    return runs


def print_answer(answer, stream=None, streamed: bool = False, show_episode: bool = False,
                 err=None, verbose: bool = False) -> None:
    """The answer, then its sources (time, [episode,] chapter, speaker), then each note once on
    ``err`` (stderr). ``show_episode`` for indexes of several episodes, where a time alone does
    not say which conversation it is in. ``verbose``: also the chat model's tokens (stderr)."""
    stream = stream or sys.stdout
    chunk_of = {h.chunk.id: h.chunk for h in answer.hits}
    if not streamed:
        print(answer.text, file=stream)
    if answer.citations:
        print("\nSources:", file=stream)
        for run in source_runs(answer.citations):
            first, last = run[0], run[-1]
            chunk = chunk_of.get(first.passage_id)
            label = first.label
            if show_episode and chunk is not None and not first.episode:
                label = f"[{chunk.episode} {first.start}]"
            span = f"{first.mark}{label}" + (f"–{last.mark}[{last.start}]" if last is not first else "")
            link = f" · {chunk.url}" if show_episode and chunk is not None and chunk.url else ""
            print(f"  {span} {_where(None, first.chapter)}{first.speaker}{link}", file=stream)
    for note in dict.fromkeys(answer.notes):
        print(f"note: {note}", file=err or sys.stderr)
    if verbose:
        u = answer.usage
        print(f"tokens: {u.prompt_tokens:,} sent ({u.passages} passages), {u.completion_tokens:,} received"
              if u is not None else "tokens: none (no chat model was asked)", file=err or sys.stderr)


def cmd_ask(args) -> int:
    backend = args.backend or "auto"
    assistant = _assistant(args, backend)
    scope = dict(show=args.show, episode=args.episode, per_episode=args.per_episode)
    if args.batch:
        for item_id, question in _read_batch(args.batch):
            answer = assistant.ask(question, k=args.k, **scope)
            _print_json({"id": item_id, **answer.to_json()})
        return 0
    if args.json:
        _print_json(assistant.ask(args.question, k=args.k, **scope).to_json())
        return 0
    streamed = False
    final = None
    deltas: list[str] = []
    live = assistant.backend != "extractive" and sys.stdout.isatty()
    for event in assistant.stream(args.question, k=args.k, **scope):
        if isinstance(event, str):
            deltas.append(event)
            if live:
                sys.stdout.write(event)
                sys.stdout.flush()
                streamed = True
        else:
            final = event
    if streamed:
        # The stream showed the model's raw text; the checked text (citations verified and
        # rendered as times) is what counts, so show it when it differs.
        print()
        if final.text.strip() != "".join(deltas).strip():
            print("\nChecked answer:\n" + final.text)
    print_answer(final, streamed=streamed, show_episode=len(assistant.transcripts) > 1,
                 verbose=args.verbose)
    return 0


def cmd_search(args) -> int:
    assistant = _assistant(args)
    filters = dict(chapter=args.chapter, speaker=args.speaker, start_s=args.start, end_s=args.end,
                   show=args.show, episode=args.episode, per_episode=args.per_episode)
    if args.batch:
        for item_id, question in _read_batch(args.batch):
            hits = assistant.search(question, k=args.k, **filters)
            _print_json({"id": item_id, "query": question, "passages": [h.to_json() for h in hits]})
        return 0
    hits = assistant.search(args.question, k=args.k, **filters)
    if args.json:
        _print_json({"query": args.question, "passages": [h.to_json() for h in hits]})
        return 0
    if not hits:
        given = " / ".join(f"--{n}" for n in ("show", "episode", "chapter", "speaker", "start", "end")
                           if getattr(args, n) is not None)
        print(f"No passage matches (check {given})." if given else "No passage matches.")
    for n, line in enumerate(_passage_lines(hits, show_episode=len(assistant.transcripts) > 1)):
        print(line)
    return 0


def cmd_index(args) -> int:
    from .api import build_index

    t0 = time.monotonic()
    path = build_index(args.sources or None, name=args.name, progress=progress_printer())
    if isinstance(path, dict):  # written to the database (RAG_DATABASE_URL)
        print(f"indexed {path['episodes']} episodes ({path['replaced']} replaced, {path['unchanged']} "
              f"unchanged, skipped): {path['passages']} passages in {time.monotonic() - t0:.1f}s "
              f"-> {path['database']} index {path['name']!r}")
        return 0
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError:
        # Another build of the same index published after this one and removed this version:
        # what is served now is that one.
        current = path.parent / (path.parent / "CURRENT").read_text().strip()
        manifest = json.loads((current / "manifest.json").read_text())
    reused = manifest["embedding_cache"]["reused"]
    episodes = manifest["episodes"]
    named = ", ".join(episodes) if len(episodes) <= 5 else f"{len(episodes)} episodes ({', '.join(episodes[:3])}, ...)"
    print(f"indexed {named}: {manifest['chunks']} chunks, "
          f"{manifest['sentences']} sentences ({reused} embeddings reused) "
          f"in {time.monotonic() - t0:.1f}s -> {path.parent}")
    return 0


def cmd_db(args) -> int:
    from .config import Config
    from .stores import postgres

    config = Config.from_env()
    if not config.database_url:
        raise InputError("no database is configured: set RAG_DATABASE_URL=postgresql://user@host/db")
    db = postgres.database(config)
    if args.action == "migrate":
        applied = db.migrate()
        print(f"applied migrations {', '.join(map(str, applied))}" if applied else
              f"the schema is current (version {postgres.SCHEMA_VERSION})")
        return 0
    if args.action == "drop":
        if not args.name:
            raise InputError("rag db drop needs an index name, e.g. rag db drop catalog")
        found = postgres.drop_index(config, args.name)
        print(f"dropped index {args.name!r}" if found else f"no index named {args.name!r} in {db.where}")
        return 0 if found else 4
    status = db.status()
    if args.json:
        _print_json(status)
        return 0
    print(f"{status['database']}: schema version {status['schema_version']} "
          f"(this rag: {status['schema_current']})")
    if status["schema_version"] == 0:
        print("no rag tables yet: `rag db migrate` or `rag index ...` creates them")
    for ix in status["indexes"]:
        print(f"  {ix['name']}: {ix['episodes']} episodes, {ix['passages']} passages, {ix['windows']} "
              f"windows; model {ix['model']}; generation {ix['generation']}, updated {ix['updated']}")
    if status.get("tables_bytes"):
        sizes = ", ".join(f"{k} {v / 2**20:.1f} MB" for k, v in status["tables_bytes"].items())
        print(f"  tables (with their indexes): {sizes}")
    return 0


def cmd_episodes(args) -> int:
    from .timecode import format_time

    episodes = _assistant(args).episodes(show=args.show)
    if args.json:
        _print_json({"episodes": episodes})
        return 0
    if not episodes:
        print(f"No episode of {args.show!r} in this index." if args.show else "No episodes.")
    for e in episodes:
        # "Go Time #3" only repeats the show and number: shown for JSON and the web page, not here
        title = f" “{e['title']}”" if e["title"] and e["title"] != f"{e['show']} #{e['number']}" else ""
        who = (f"  guests: {', '.join(e['guests'])}" if e["guests"] else
               f"  hosts: {', '.join(e['hosts'])}" if e["hosts"] else "")   # captions name no one
        print(f"{e['id']}  {e['show'] or '-'}{title}  {format_time(e['duration_s'])}"
              f"{who}{'  ' + e['url'] if e['url'] else ''}")
    return 0


def cmd_transcript(args) -> int:
    from .parsers import load_transcript

    t = load_transcript(args.file)
    if args.json:
        _print_json(t.to_json())
        return 0
    ep = t.episode
    print(ep.title or ep.id)
    if t.chapters:
        print("\nChapters:")
        for c in t.chapters:
            print(f"  [{_fmt(c.start_s)}] {c.title}{'  (sponsor)' if c.sponsor else ''}")
    chapter = object()
    for turn in t.turns:
        if turn.chapter != chapter and turn.chapter is not None:
            print(f"\n## {turn.chapter}")
        chapter = turn.chapter
        for i, p in enumerate(turn.paragraphs):
            mark = "~" if p.estimated else " "
            who = turn.speaker + ("?" if turn.speaker_inferred else "") if i == 0 else ""
            print(f"\n[{_fmt(p.start_s or 0)}]{mark} {who + ': ' if who else ''}{p.text}")
    print("\n(~ estimated time; ? inferred speaker)", file=sys.stderr)
    return 0


def _fmt(seconds: float) -> str:
    from .timecode import format_time

    return format_time(seconds)


def _run_module(module: str, func: str = "run"):
    def run(args) -> int:
        import importlib

        return importlib.import_module(module).__getattribute__(func)(args) or 0

    return run


def _add_surfaces(sub) -> None:
    """rag chat, rag serve and rag mcp: each runs its module (imported only when chosen)."""
    sp = sub.add_parser("chat", help="interactive chat in the terminal")
    sp.add_argument("--index", default=None)
    sp.add_argument("--backend", choices=["extractive", "openai"], default=None)
    sp.add_argument("--k", type=int, default=5)
    sp.set_defaults(func=_run_module("rag.repl"))

    sp = sub.add_parser("serve", help="HTTP API, OpenAI-compatible endpoint and web chat page")
    sp.add_argument("--host", default="127.0.0.1")
    sp.add_argument("--port", type=int, default=8000)
    sp.add_argument("--index", default=None)
    sp.add_argument("--backend", choices=["extractive", "openai"], default=None)
    sp.set_defaults(func=_run_module("rag.server"))

    sp = sub.add_parser("mcp", help="Model Context Protocol server over stdio")
    sp.add_argument("--index", default=None)
    sp.add_argument("--backend", choices=["extractive", "openai"], default=None)
    sp.set_defaults(func=_run_module("rag.mcp_server"))


def _add_eval(sub) -> None:
    sp = sub.add_parser("eval", help="evaluate retrieval and answers against a question set")
    sp.add_argument("file", nargs="?", default=None, help="question set (default: eval/questions.jsonl)")
    sp.add_argument("--split", choices=["dev", "test", "all"], default="test")
    sp.add_argument("--backend", choices=["extractive", "openai"], default=None)
    sp.add_argument("--k", type=int, default=5)
    sp.add_argument("--index", default=None)
    sp.add_argument("--out", default=None, help="run folder (default: eval/runs/<timestamp>)")
    sp.add_argument("--baselines", action="store_true", help="also run generic baseline pipelines")
    sp.add_argument("--judge", action="store_true", help="LLM judge (needs a chat model)")
    sp.add_argument("--compare", nargs=2, metavar=("RUN_A", "RUN_B"), help="compare two runs")
    sp.add_argument("--catalog", nargs="?", const="", default=None, metavar="SOURCE",
                    help="quality across a catalog index (--index): mined host questions from episodes "
                         "training left out, and eval/catalog_questions.jsonl; SOURCE: the catalog it was "
                         "built from (default RAG_CATALOG)")
    sp.add_argument("--limit", type=int, default=500, help="mined questions for --catalog (default 500)")
    sp.set_defaults(func=_run_module("rag.evaluation.cli"))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Ask the Practical AI #260 interview "
                                "(Runway's Anastasis Germanidis) and get answers with timestamps.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_scope(sp):
        sp.add_argument("--show", help="only this show (name or folder, e.g. practicalai)")
        sp.add_argument("--episode", help="only this episode (its id, e.g. practical-ai-260)")
        sp.add_argument("--per-episode", type=int, default=None, metavar="N",
                        help="at most N passages of any one episode (1-100; default: 2 for a question "
                             "asked of many episodes of a catalog, else no limit)")

    def with_index(sp):
        sp.add_argument("--index", default=None, help="index name (default: the shipped episode)")
        sp.add_argument("--k", type=int, default=5, help="passages to retrieve (default 5)")
        sp.add_argument("--json", action="store_true", help="print JSON")
        sp.add_argument("--batch", metavar="FILE", help="one question per line (text or JSON "
                        "with \"question\" and optional \"id\"); prints JSON lines")

    sp = sub.add_parser("ask", help="answer a question with cited timestamps")
    sp.add_argument("question", nargs="?", default=None)
    sp.add_argument("--backend", choices=["extractive", "openai"], default=None,
                    help="extractive (offline) or openai (any OpenAI-compatible server); "
                         "default: openai when configured, else extractive")
    sp.add_argument("--verbose", action="store_true",
                    help="also print the tokens the chat model was sent and wrote")
    with_scope(sp)
    with_index(sp)
    sp.set_defaults(func=cmd_ask)

    sp = sub.add_parser("search", help="show the passages that match a question")
    sp.add_argument("question", nargs="?", default=None)
    sp.add_argument("--chapter", help="only this chapter (title or part of it)")
    sp.add_argument("--speaker", help="only passages where this speaker talks")
    sp.add_argument("--start", type=_seconds, help="only from this time (MM:SS or seconds)")
    sp.add_argument("--end", type=_seconds, help="only up to this time (MM:SS or seconds)")
    with_scope(sp)
    with_index(sp)
    sp.set_defaults(func=cmd_search)

    sp = sub.add_parser("episodes", help="list the episodes an index holds")
    sp.add_argument("--index", default=None, help="index name (default: the shipped episode)")
    sp.add_argument("--show", help="only this show's episodes")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_episodes)

    sp = sub.add_parser("index", help="build or rebuild an index from transcript files")
    sp.add_argument("sources", nargs="*", help="transcripts (.md, page .txt, .vtt, .srt), folders of "
                    "them, or .tar.gz / .zip archives; default: the shipped episode")
    sp.add_argument("--name", help="index name (default: the episode id)")
    sp.set_defaults(func=cmd_index)

    sp = sub.add_parser("db", help="the PostgreSQL store (RAG_DATABASE_URL): status, migrate, drop")
    sp.add_argument("action", nargs="?", choices=["status", "migrate", "drop"], default="status")
    sp.add_argument("name", nargs="?", help="the index to drop")
    sp.add_argument("--json", action="store_true", help="print JSON")
    sp.set_defaults(func=cmd_db)

    sp = sub.add_parser("transcript", help="parse a transcript and print it (no model needed)")
    sp.add_argument("file")
    sp.add_argument("--json", action="store_true")
    sp.set_defaults(func=cmd_transcript)

    _add_surfaces(sub)

    from .training.cli import add_parser as add_train_parser  # stdlib-only module: no torch here

    add_train_parser(sub)
    from .training.questions import add_parser as add_questions_parser  # no torch here either

    add_questions_parser(sub)

    _add_eval(sub)
    return p


def _seconds(text: str) -> float:
    from .timecode import parse_time

    try:
        return float(text)
    except ValueError:
        try:
            return parse_time(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from e


# the output cannot be written: a full disk, a file too large, a quota, an I/O error
_OUTPUT_ERRNOS = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EIO}


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("ask", "search"):
        if args.batch and args.question:
            parser.error("give a question or --batch FILE, not both")
        if not args.batch and args.question is None:
            parser.error(f"{args.command} needs a question, e.g. rag {args.command} \"How did Runway start?\"")
    if getattr(args, "question", None) is not None:
        args.question = clean_text(args.question)  # argv's undecodable bytes: U+FFFD, as everywhere
    try:
        if args.command in ("ask", "search") and not args.batch:
            # Cheap checks first: a bad question must not wait for an index build.
            from .inputs import check_question

            check_question(args.question)
        if args.command == "search":
            from .inputs import check_span

            check_span(args.start, args.end)
        if getattr(args, "k", 1) is not None and not 1 <= getattr(args, "k", 1) <= 100:
            raise InputError(f"k must be between 1 and 100, not {args.k}")
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # here, so that a full disk is reported like any other error
        return code
    except RagError as e:
        print(f"rag: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("rag: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _drop_stdout()
        return 0
    except OSError as e:
        if e.errno not in _OUTPUT_ERRNOS or os.environ.get("RAG_DEBUG"):
            raise
        _drop_stdout()
        print(f"rag: error: cannot write the output ({e.strerror}); free some space, or send the "
              "output somewhere else", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - the CLI's contract is one clear line, never a traceback
        if os.environ.get("RAG_DEBUG"):
            raise
        print(f"rag: unexpected error: {type(e).__name__}: {e} (set RAG_DEBUG=1 to see the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
