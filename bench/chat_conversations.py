"""Follow-ups answered with a chat model, measured with a language model in the loop (issue 25's
targets: the second turn's top 5 passages hold its answer, and its answer quotes it).

    python bench/chat_conversations.py ask        # every conversation, as far as the replies go
    python bench/chat_answers.py --run eval/runs/chat-conversations pending --out DIR
    python bench/chat_answers.py --run eval/runs/chat-conversations import DIR/*.txt
    python bench/chat_conversations.py score      # the table

The conversations: every two-turn conversation of the listeners' corpus in ``--splits`` (test and
the held-out shows), asked as ``rag chat`` asks them with a chat model configured (the default
context of 6,000 tokens): the first question; then the follow-up, rewritten to stand alone by the
chat model (``prompts/condense.md``) and answered with the first turn as history. A conversation
waits at its first request without a reply, so ``ask`` is run three times with replies written in
between: the first answers, the follow-ups' standalone forms, the second answers. Scored as
``rag eval`` scores a follow-up (``rag.evaluation.runner.run_item``): the sentences the answer's
citations point to hold a gold quote.

The stand-in server, the record and the writing of replies are ``bench/chat_answers.py``'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from chat_answers import CHAT_MODEL, indexed  # noqa: E402
from chat_standin import PENDING, Record, StandIn  # noqa: E402

RUN = REPO / "eval" / "runs" / "chat-conversations"
SPLITS = ("test", "held_out_shows")


def conversations(splits) -> list[dict]:
    """Every conversation of the wanted splits, as ``rag eval`` items (a follow-up with its first turn)."""
    from rag.evaluation import readers as R

    plan = R.splits()
    out = []
    for split in splits:
        for episode in plan[split]:
            path = R.CORPUS / f"{episode}.jsonl"
            if path.exists():
                convs = [it for it in R.load(path) if it.get("turns")]
                out += [{**it, "split": split} for it in R.as_eval_items(convs)]
    return out


def uncovered(splits, per_episode: int) -> list[dict]:
    """The first ``per_episode`` unanswerable questions of each episode, each asked alone and after
    the first turn of the episode's first conversation (issue 25: an uncovered follow-up is refused
    as it is alone)."""
    from rag.evaluation import readers as R

    plan = R.splits()
    out = []
    for split in splits:
        for episode in plan[split]:
            path = R.CORPUS / f"{episode}.jsonl"
            if not path.exists():
                continue
            items = R.load(path)
            first = next((it["turns"][0] for it in items if it.get("turns")), None)
            if first is None:
                continue
            for it in [it for it in items if it.get("answerable") is False and not it.get("turns")][:per_episode]:
                base = {"id": it["id"], "split": split, "episode": episode, "question": it["question"]}
                out += [{**base, "kind": "alone"},
                        {**base, "id": f"{it['id']}-after", "kind": "after", "history": [first["question"]]}]
    return out


def _ask_uncovered(assistant, it: dict) -> dict:
    """One uncovered question, alone or after a first turn, as far as the replies go."""
    row = {"id": it["id"], "split": it["split"], "episode": it["episode"], "kind": it["kind"],
           "question": it["question"]}
    history = []
    if it["kind"] == "after":
        first = it["history"][0]
        answer = assistant.ask(first)
        if answer.text == PENDING:
            return {**row, "stage": "first answer"}
        history = [(first, answer.text)]
        if assistant.standalone(it["question"], history) == PENDING:
            return {**row, "stage": "standalone follow-up"}
    answer = assistant.ask(it["question"], history=history)
    if answer.text == PENDING:
        return {**row, "stage": "follow-up answer" if history else "first answer"}
    return {**row, "stage": "done", "refused": bool(answer.refused), "answer": answer.text,
            "standalone": answer.standalone_question, "backend": answer.backend}


def _row(item: dict, stage: str, res: dict | None = None) -> dict:
    row = {"id": item["id"], "split": item["split"], "episode": item["episode"], "stage": stage}
    if res is not None:
        hits = res["metrics"] or {}
        row.update({
            "question": item["question"], "first": item["history"][0],
            "standalone": res["standalone"], "answer": res["answer"], "refused": res["refused"],
            "backend": res["backend"], "hit@5": hits.get("hit@5"),
            "quote_support": res["quote_support"], "citation_support": res["citation_support"],
            "first_citation_support": any(c["holds_gold"] for c in res["turn1"]["citations"]),
            "citations": [{k: c[k] for k in ("start", "quote", "holds_gold") if k in c}
                          for c in res["citations"]]})
    return row


def cmd_ask(args) -> int:
    from rag.api import Assistant
    from rag.chat_models import OpenAIChatModel
    from rag.evaluation import runner

    run = Path(args.run)
    run.mkdir(parents=True, exist_ok=True)
    items = conversations(args.splits.split(","))
    unasked = uncovered(args.splits.split(","), args.uncovered)
    episodes = sorted({it["episode"] for it in items + unasked})
    config = indexed(episodes, args.index_dir)
    record = Record(run)
    rows, refusals = [], []
    with StandIn(record) as url:
        model = OpenAIChatModel(CHAT_MODEL, base_url=url, api_key="stand-in", backoff=0)
        for episode in episodes:
            assistant = Assistant.load(episode, config=config, chat_model=model)
            for it in (it for it in items if it["episode"] == episode):
                first = it["history"][0]
                answer = assistant.ask(first)
                if answer.text == PENDING:
                    rows.append(_row(it, "first answer"))
                    continue
                if assistant.standalone(it["question"], [(first, answer.text)]) == PENDING:
                    rows.append(_row(it, "standalone follow-up"))
                    continue
                res = runner.run_item(assistant, it, k=5)
                res.pop("_answer", None)
                rows.append(_row(it, "follow-up answer" if res["answer"] == PENDING else "done", res))
            for it in (it for it in unasked if it["episode"] == episode):
                refusals.append(_ask_uncovered(assistant, it))
    if all(r["stage"] == "done" for r in rows + refusals):   # the record keeps what this run asked, no more
        gone = record.keep_only_asked()
        if gone:
            print(f"{gone} requests no longer asked left the record", file=sys.stderr)
    (run / "uncovered.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in refusals),
                                         encoding="utf-8")
    (run / "answers.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                       encoding="utf-8")
    waiting = {s: sum(r["stage"] == s for r in rows) for s in ("first answer", "standalone follow-up",
                                                               "follow-up answer")}
    print(f"{len(rows)} conversations: {sum(r['stage'] == 'done' for r in rows)} done; waiting for "
          + ", ".join(f"{n} at the {s}" for s, n in waiting.items()), file=sys.stderr)
    print(f"{len(refusals)} uncovered questions (alone and after a turn): "
          f"{sum(r['stage'] == 'done' for r in refusals)} done", file=sys.stderr)
    print(f"{len(record.pending('answer'))} requests without a reply", file=sys.stderr)
    return 0


def score(rows: list[dict]) -> dict:
    done = [r for r in rows if r["stage"] == "done"]
    answered = [r for r in done if not r["refused"]]
    mean = lambda xs: statistics.fmean(xs) if xs else None  # noqa: E731
    return {
        "n": len(rows), "done": len(done),
        "hit@5": mean([float(r["hit@5"]) for r in done if r["hit@5"] is not None]),
        "quote_support": mean([float(r["quote_support"]) for r in answered]),
        "quote_support_all": mean([float(bool(r["quote_support"])) for r in done]),
        "citation_support": mean([float(r["citation_support"]) for r in answered]),
        "refused": mean([float(r["refused"]) for r in done]),
        "first_citation_support": mean([float(r["first_citation_support"]) for r in done]),
        "fallbacks": sum(r["backend"] != "openai" for r in done),
    }


def cmd_score(args) -> int:
    run = Path(args.run)
    rows = [json.loads(l) for l in (run / "answers.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = ["| conversations | n (scored) | second turn: top 5 hold it | its answer quotes it (answered) "
             "| quotes it (refusals count as misses) | cites a passage that holds it | refused "
             "| first turn cites it | fell back to extractive |",
             "|---|---|---|---|---|---|---|---|---|"]
    names = {"test": "listeners' test", "held_out_shows": "held-out shows",
             "validation": "listeners' validation"}
    for split in dict.fromkeys(r["split"] for r in rows):
        s = score([r for r in rows if r["split"] == split])
        lines.append(f"| {names.get(split, split)} | {s['n']} ({s['done']}) | {f(s['hit@5'])} | "
                     f"{f(s['quote_support'])} | {f(s['quote_support_all'])} | {f(s['citation_support'])} | "
                     f"{f(s['refused'])} | {f(s['first_citation_support'])} | {s['fallbacks']} |")
    path = run / "uncovered.jsonl"
    refusals = [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()] if path.exists() else []
    if refusals:
        lines += ["", "| uncovered questions | n (scored) | refused alone | refused after a turn |", "|---|---|---|---|"]
        for split in dict.fromkeys(r["split"] for r in refusals):
            done = [r for r in refusals if r["split"] == split and r["stage"] == "done"]
            rate = lambda kind: statistics.fmean(  # noqa: E731
                [float(r["refused"]) for r in done if r["kind"] == kind] or [float("nan")])
            n = sum(r["split"] == split and r["kind"] == "alone" for r in refusals)
            lines.append(f"| {names.get(split, split)} | {n} ({sum(r['kind'] == 'alone' for r in done)}) | "
                         f"{f(rate('alone'))} | {f(rate('after'))} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=str(RUN), help="where the record lives (default eval/runs/chat-conversations)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sp = sub.add_parser("ask")
    sp.add_argument("--splits", default=",".join(SPLITS), help="the listeners' splits whose conversations are asked")
    sp.add_argument("--index-dir", default=None, help="keep the episodes' indexes here between runs")
    sp.add_argument("--uncovered", type=int, default=2,
                    help="unanswerable questions per episode asked alone and after a first turn")
    sp.set_defaults(func=cmd_ask)
    sp = sub.add_parser("score")
    sp.add_argument("--out", default=None)
    sp.set_defaults(func=cmd_score)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
