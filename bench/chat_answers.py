"""Answers with a chat model, measured with a language model in the loop (issue: chat answers).

    python bench/chat_answers.py ask      # rag answers every question at every budget through the
                                          # stand-in (bench/chat_standin.py); new requests are recorded
    python bench/chat_answers.py pending --out DIR   # the requests still without a reply, in batches
    python bench/chat_answers.py import DIR/*.txt    # the replies a language model wrote for them
    python bench/chat_answers.py judge    # the judge's requests (prompts/judge.md) for every answer
    python bench/chat_answers.py score    # the table

The questions: ``--questions`` (150) from the test split of the listeners' corpus (eval/readers/),
``--episodes`` (15) episodes drawn with a fixed seed, in each the same share of answerable and
unanswerable ones (8 and 2). Each budget is one way to fill the chat model's context: ``5p`` is the
old five passages (trimmed to 3,000 tokens), a number is ``RAG_CONTEXT_TOKENS``; ``extractive`` is the
offline answer, judged the same way.

Replies are written by a language model that sees only the recorded request (the system and user
messages). The record (requests, replies, answers, judgements) lives in ``--run``
(eval/runs/chat-answers/), so a later change is rescored without new replies wherever its requests
are unchanged: run ``ask`` again and only the new requests are pending.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from chat_standin import PENDING, Record, StandIn, asked as _asked  # noqa: E402

RUN = REPO / "eval" / "runs" / "chat-answers"
BUDGETS = ("extractive", "5p", "1500", "3000", "6000")
CHAT_MODEL = "gpt-4o-mini"     # the default RAG_CHAT_MODEL: its encoding (o200k_base) counts the budget
VERDICTS = ("correct", "partly", "wrong")


# --- the questions ---------------------------------------------------------------------------------

def pick_questions(n: int, episodes: int, seed: int = 7, split: str = "test") -> list[dict]:
    from rag.evaluation import readers as R

    plan = R.splits()
    eps = sorted(e for e in plan[split] if (R.CORPUS / f"{e}.jsonl").exists())
    rng = random.Random(seed)
    chosen = sorted(rng.sample(eps, episodes))
    per = n // episodes
    unanswerable = max(1, round(per * 0.2))
    out = []
    for e in chosen:
        items = [it for it in R.load(R.CORPUS / f"{e}.jsonl") if not it.get("turns")]
        ok = [it for it in items if it.get("answerable")]
        no = [it for it in items if not it.get("answerable")]
        for it in rng.sample(ok, per - unanswerable) + rng.sample(no, unanswerable):
            out.append({"id": it["id"], "episode": e, "question": it["question"],
                        "answerable": bool(it.get("answerable")), "type": it.get("type"),
                        "style": it.get("style"), "answer": it.get("answer", ""),
                        "gold_quotes": it.get("gold_quotes", [])})
    return out


def questions(run: Path, n: int, episodes: int, split: str = "test") -> list[dict]:
    path = run / "questions.jsonl"
    if path.exists():
        return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    items = pick_questions(n, episodes, split=split)
    path.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items), encoding="utf-8")
    return items


# --- asking ----------------------------------------------------------------------------------------

def _assistant(index: str, config, budget: str, model):
    from rag.answer.generative import ChatAnswerer
    from rag.api import Assistant
    from rag.tokens import encoding_for

    if budget == "extractive":     # the offline answer on the same questions, judged the same way
        return Assistant.load(index, config=config, backend="extractive")
    if budget.endswith("p"):
        assistant = Assistant.load(index, config=config, chat_model=model)
        assistant.answerer = ChatAnswerer(model, passages=int(budget[:-1]), token_budget=3000,
                                          fallback=assistant.extractive, encoding=encoding_for(CHAT_MODEL))
        return assistant
    return Assistant.load(index, config=replace(config, context_tokens=int(budget)), chat_model=model)


def indexed(episodes: list[str], index_dir: str | None):
    """The config a user gets (the shipped adapter and the defaults, not this run's environment),
    with an index of each episode in ``index_dir`` (a temporary folder when None)."""
    from rag.api import build_index
    from rag.config import Config, catalog_path
    from rag.evaluation import readers as R

    folder = Path(index_dir) if index_dir else Path(tempfile.mkdtemp(prefix="rag-chat-"))
    config = Config.from_env({"RAG_INDEX_DIR": str(folder)})
    with tempfile.TemporaryDirectory() as tmp:
        for n, (episode, text) in enumerate(R.transcripts(episodes, catalog_path()), 1):
            if not (folder / episode).exists():
                source = Path(tmp) / f"{episode}.md"
                source.write_text(text, encoding="utf-8")
                print(f"indexing {episode} ({n}/{len(episodes)})", file=sys.stderr)
                build_index([source], name=episode, config=config)
    return config


def cmd_ask(args) -> int:
    from rag.chat_models import OpenAIChatModel

    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    items = questions(run, args.questions, args.episodes, args.split)
    episodes = sorted({it["episode"] for it in items})
    config = indexed(episodes, args.index_dir)
    record = Record(run)
    with StandIn(record) as url:
        model = OpenAIChatModel(CHAT_MODEL, base_url=url, api_key="stand-in", backoff=0)
        for budget in args.budgets.split(","):
            rows = []
            for episode in episodes:
                assistant = _assistant(episode, config, budget, model)
                for it in (it for it in items if it["episode"] == episode):
                    answer = assistant.ask(it["question"])
                    row = answer.to_json()   # the passages by id and time: their text is in the requests
                    row["passages"] = [{"id": p["id"], "start": p["start"]} for p in row["passages"]]
                    rows.append({"id": it["id"], "budget": budget, "pending": answer.text == PENDING, **row})
            (run / f"answers-{budget}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            waiting = sum(r["pending"] for r in rows)
            print(f"{budget}: {len(rows)} answers, {waiting} waiting for a reply", file=sys.stderr)
    print(f"{len(record.pending('answer'))} answer requests without a reply", file=sys.stderr)
    return 0


# --- replies written outside -----------------------------------------------------------------------

def cmd_pending(args) -> int:
    """The requests without a reply, in batches of about ``--chars`` characters: the system message
    once, then each request's user message under its key. No batch holds one question twice (a
    writer must see each request alone, not the same question with more passages). A batch's
    replies go in a text file as ``=== KEY`` lines, each followed by its reply."""
    record = Record(args.run)
    todo = sorted(record.pending(args.kind), key=lambda r: (_asked(r), r["key"]))
    size = lambda r: sum(len(m["content"]) for m in r["messages"])  # noqa: E731
    count = max(1, -(-sum(map(size, todo)) // args.chars), max(
        (sum(1 for r in todo if _asked(r) == q) for q in {_asked(r) for r in todo}), default=1))
    batches: list[list[dict]] = [[] for _ in range(count)]
    for i, r in enumerate(todo):          # consecutive requests of one question go to different batches
        batches[i % count].append(r)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for b, batch in enumerate(batches, 1):
        systems = {m["content"] for r in batch for m in r["messages"] if m["role"] == "system"}
        lines = [f"# {len(batch)} requests ({args.kind or 'all'}), batch {b:02d}", ""]
        if len(systems) == 1:
            lines += ["## The system message of every request below", "", next(iter(systems)), ""]
        for r in batch:
            lines += [f"=== {r['key']}", ""]
            for m in r["messages"]:
                if m["role"] != "system" or len(systems) > 1:
                    lines += [f"[{m['role']}]", m["content"], ""]
        (out / f"batch-{args.kind or 'all'}-{b:02d}.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"{len(todo)} requests in {len(batches)} batches under {out}")
    return 0


def read_replies(text: str) -> dict[str, str]:
    parts = re.split(r"^=== ([0-9a-f]{20})\s*$", text, flags=re.M)
    return {key: body.strip() for key, body in zip(parts[1::2], parts[2::2]) if body.strip()}


def cmd_import(args) -> int:
    record = Record(args.run)
    total = 0
    for name in args.files:
        replies = read_replies(Path(name).read_text(encoding="utf-8"))
        unknown = [k for k in replies if k not in record.requests]
        total += record.add_replies(replies)
        print(f"{name}: {len(replies)} replies" + (f", {len(unknown)} for no recorded request" if unknown else ""))
    print(f"{total} new replies; {len(record.pending())} requests still without one")
    return 0


# --- judging ---------------------------------------------------------------------------------------

def judge_messages(item: dict, answer: dict) -> list[dict]:
    from rag.evaluation.judge import UNANSWERABLE_REFERENCE
    from rag.prompts import load_prompt

    reference = item["answer"] or UNANSWERABLE_REFERENCE
    if item["gold_quotes"]:
        reference += "\nThe transcript's words: " + " / ".join(f"\u201c{q}\u201d" for q in item["gold_quotes"])
    cited = "\n".join(f"{c.get('episode', '') + ' ' if c.get('episode') else ''}[{c['start']}] "
                      f"{c['speaker']}: {c['quote']}" for c in answer["citations"]) or "(none)"
    return load_prompt("judge").render(question=item["question"], reference=reference, passages=cited,
                                       answer=answer["answer"])


def cmd_judge(args) -> int:
    from rag.chat_models import OpenAIChatModel
    from rag.evaluation.judge import parse_judgement

    run = Path(args.run)
    items = {it["id"]: it for it in questions(run, 0, 1)}
    record = Record(run)
    with StandIn(record) as url:
        model = OpenAIChatModel("judge", base_url=url, api_key="stand-in", backoff=0)
        for budget in args.budgets.split(","):
            rows, waiting = [], 0
            for answer in _answers(run, budget):
                if answer["pending"] or answer["refused"]:
                    continue
                reply = model.complete(judge_messages(items[answer["id"]], answer), temperature=0.0)
                parsed = parse_judgement(reply) if reply != PENDING else None
                waiting += reply == PENDING
                rows.append({"id": answer["id"], "budget": budget, "verdict": (parsed or {}).get("verdict"),
                             "judgement": parsed})
            (run / f"judged-{budget}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            print(f"{budget}: {len(rows)} answers judged, {waiting} waiting for the judge", file=sys.stderr)
    return 0


# --- the table -------------------------------------------------------------------------------------

def _answers(run: Path, budget: str) -> list[dict]:
    path = run / f"answers-{budget}.jsonl"
    return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] if path.exists() else []


def score(run: Path, budget: str, items: dict) -> dict | None:
    answers = _answers(run, budget)
    if not answers:
        return None
    judged = {}
    path = run / f"judged-{budget}.jsonl"
    if path.exists():
        judged = {r["id"]: r.get("verdict") for r in map(json.loads, path.read_text().splitlines()) if r}
    ok = [a for a in answers if items[a["id"]]["answerable"]]
    no = [a for a in answers if not items[a["id"]]["answerable"]]
    answered = [a for a in answers if not a["refused"] and not a["pending"]]
    verdicts = [judged.get(a["id"]) if not a["refused"] else "refused" for a in ok if not a["pending"]]
    valid = [a for a in answered if a["citations"]
             and not any(n.startswith("removed citation") for n in a.get("notes", []))]
    sent = [a["usage"]["prompt_tokens"] for a in answers if a.get("usage")]
    return {
        "n": len(answers), "answerable": len(ok), "unanswerable": len(no),
        "pending": sum(a["pending"] for a in answers),
        "unjudged": sum(v is None for v in verdicts),
        **{v: sum(x == v for x in verdicts) / len(ok) for v in VERDICTS + ("refused",)},
        "false_refusals": sum(a["refused"] for a in ok) / len(ok),
        "refusal_recall": sum(a["refused"] for a in no) / len(no) if no else None,
        # An uncovered question answered "the passages don't give X; they only say Y" (what the
        # prompt asks for a question the evidence answers in part): honest, but not a refusal.
        "uncovered_declined": sum(a["refused"] or judged.get(a["id"]) == "correct" for a in no) / len(no) if no else None,
        "citation_validity": len(valid) / len(answered) if answered else None,
        "quotes_unquoted": sum(any(n.startswith("removed the quotation") for n in a.get("notes", []))
                               for a in answered),
        "fallbacks": sum(a["backend"] != "openai" for a in answers) if budget != "extractive" else 0,
        "tokens_sent_median": statistics.median(sent) if sent else None,
        "passages_median": statistics.median(a["usage"]["passages"] for a in answers if a.get("usage")) if sent else None,
    }


def cmd_score(args) -> int:
    run = Path(args.run)
    items = {it["id"]: it for it in questions(run, 0, 1)}
    head = ("| context | correct | partly | wrong | refused (false refusals) | refusal recall | uncovered: refused "
            "or said so | citation validity | tokens sent (median) | passages read (median) |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    rows = [head]
    for budget in args.budgets.split(","):
        s = score(run, budget, items)
        if s is None:
            continue
        label = ("extractive (no chat model)" if budget == "extractive" else
                 f"{budget[:-1]} passages" if budget.endswith("p") else f"{int(budget):,} tokens")
        f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        rows.append(f"| {label} | {f(s['correct'])} | {f(s['partly'])} | {f(s['wrong'])} | {f(s['false_refusals'])} | "
                    f"{f(s['refusal_recall'])} | {f(s['uncovered_declined'])} | {f(s['citation_validity'])} | "
                    + (f"{s['tokens_sent_median']:,.0f} | {s['passages_median']:.0f} |" if s["tokens_sent_median"] else "- | 5 |"))
        if s["pending"] or s["unjudged"] or s["fallbacks"] or s["quotes_unquoted"]:
            rows.append(f"<!-- {label}: {s['pending']} waiting for a reply, {s['unjudged']} not judged, "
                        f"{s['fallbacks']} fell back to the extractive answer, {s['quotes_unquoted']} had a quotation "
                        "unquoted -->")
    n = len(items)
    ok = sum(it["answerable"] for it in items.values())
    text = (f"{n} questions from the listeners' test split ({ok} answerable, {n - ok} not), "
            f"{len({it['episode'] for it in items.values()})} episodes; shares of the answerable ones, "
            "refusal recall of the others.\n\n" + "\n".join(rows))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(RUN), help="where the record lives (default eval/runs/chat-answers)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("ask")
    sp.add_argument("--budgets", default=",".join(BUDGETS))
    sp.add_argument("--questions", type=int, default=150)
    sp.add_argument("--episodes", type=int, default=15)
    sp.add_argument("--split", default="test", help="the listeners' split the questions come from (a new --run)")
    sp.add_argument("--index-dir", default=None, help="keep the episodes' indexes here between runs")
    sp.set_defaults(func=cmd_ask)
    sp = sub.add_parser("pending")
    sp.add_argument("--out", required=True)
    sp.add_argument("--kind", choices=["answer", "judge"], default=None)
    sp.add_argument("--chars", type=int, default=240_000, help="about this many characters a batch")
    sp.set_defaults(func=cmd_pending)
    sp = sub.add_parser("import")
    sp.add_argument("files", nargs="+")
    sp.set_defaults(func=cmd_import)
    sp = sub.add_parser("judge")
    sp.add_argument("--budgets", default=",".join(BUDGETS))
    sp.set_defaults(func=cmd_judge)
    sp = sub.add_parser("score")
    sp.add_argument("--budgets", default=",".join(BUDGETS))
    sp.add_argument("--out", default=None)
    sp.set_defaults(func=cmd_score)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
