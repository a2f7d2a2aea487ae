"""Run an Assistant over question items: per-item results and aggregate metrics.

For each item we time ``assistant.ask`` (the answer, its citations, refusal) and, separately,
rank passages with ``assistant.search(standalone_question, k=DEPTH)`` for the retrieval metrics
(hit@k, MRR, context-budget hits). Follow-ups are asked as the conversation they end: turn 1 with
no history, turn 2 with ``history=[(first_question, first_answer_text)]``, a third turn after both.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

from ..query import exchange
from . import metrics as M

DEPTH = 20   # passages ranked per question: enough for hit@10 and a 1,200-word budget
Progress = Callable[[int, int, str], None]


def passage_record(hit, quotes: Sequence[str]) -> dict:
    c = hit.chunk
    plain = " ".join(s.text for s in c.sentences)
    return {"id": c.id, "start_s": round(c.start_s, 2), "end_s": round(c.end_s, 2),
            "words": M.words_of(plain), "held": M.held_quotes(plain, quotes)}


def score_ranking(passages: list[dict], quotes: Sequence[str], needs_all: bool) -> dict:
    return M.retrieval_metrics([p["held"] for p in passages], [p["words"] for p in passages],
                               len(quotes), needs_all)


def _turn(assistant, question: str, quotes: Sequence[str], needs_all: bool, *, k: int,
          history=(), backend=None) -> dict:
    t0 = time.perf_counter()
    answer = assistant.ask(question, k=k, history=history, backend=backend)
    latency = time.perf_counter() - t0
    standalone = answer.standalone_question or question
    previous = exchange(*history[-1]) if history else None
    ranked = [passage_record(h, quotes)  # the ranking the answer drew on, rewrites included
              for h in assistant.search(question, k=DEPTH, variants=answer.search_queries,
                                        previous=previous, standalone=standalone)]
    from ..answer.refusal import confidence

    answer_passages = {h.chunk.id: passage_record(h, quotes) for h in answer.hits}
    cites = [c.to_json() for c in answer.citations]
    for c in cites:
        c["valid"] = M.citation_valid(c, answer_passages)
        p = answer_passages.get(c["passage_id"])
        c["holds_gold"] = bool(p and p["held"])
    out = {
        "standalone": standalone,
        "search_queries": list(answer.search_queries),
        "retrieved": ranked,
        "metrics": score_ranking(ranked, quotes, needs_all) if quotes else None,
        "answer": answer.text,
        "backend": answer.backend,
        "refused": bool(answer.refused),
        "citations": cites,
        "answer_passages": list(answer_passages.values()),
        "confidence": round(float(confidence(assistant.evidence(question, k=k, history=history),
                                             assistant.extractive.policy)), 4),
        "latency_s": round(latency, 4),
        "_answer": answer,
    }
    return out


def run_item(assistant, item: dict, *, k: int = 5, backend=None) -> dict:
    quotes = item.get("gold_quotes") or []
    needs_all = bool(item.get("needs_all"))
    res = {key: item.get(key) for key in ("id", "split", "type", "question", "answerable", "answer")}
    res["needs_all"] = needs_all
    res["gold_quotes"] = quotes
    history = []
    if item.get("history"):  # a conversation's later turn, or any question asked after a first one
        first, *between = item["history"]
        t1 = _turn(assistant, first, item.get("history_gold_quotes") or [], False, k=k, backend=backend)
        history = [(first, t1["answer"])]
        t1.pop("_answer")
        res["turn1"] = {"question": first, **t1}
        for question in between:  # the turns in between, each asked after the answers before it
            history.append((question, assistant.ask(question, k=k, history=history, backend=backend).text))
    res.update(_turn(assistant, item["question"], quotes, needs_all, k=k, history=history,
                     backend=backend))
    answered = res["answerable"] and not res["refused"]
    res["citation_all_valid"] = (all(c["valid"] for c in res["citations"]) and bool(res["citations"])
                                 if not res["refused"] else None)
    res["citation_support"] = (any(c["holds_gold"] for c in res["citations"]) if answered else None)
    # Stricter: the cited sentences themselves (what the reader is shown) hold a gold quote.
    quoted = " ".join(c.get("quote") or "" for c in res["citations"])
    res["quote_support"] = bool(M.held_quotes(quoted, quotes)) if answered else None
    res["answer_words"] = M.words_of(res["answer"]) if not res["refused"] else None
    return res


def evaluate(assistant, items: Sequence[dict], *, k: int = 5, backend: str | None = None,
             baselines: Sequence | None = None, judge=None, progress: Progress | None = None) -> list[dict]:
    """Per-item results (dicts, JSON-ready apart from the private ``_answer``)."""
    if items:  # warm-up, so the first item's latency does not include model loading
        assistant.ask(items[0]["question"], k=k, backend=backend)
    results = []
    for i, item in enumerate(items):
        if progress:
            progress(i, len(items), item.get("id", ""))
        res = run_item(assistant, item, k=k, backend=backend)
        quotes = res["gold_quotes"]
        if baselines:
            res["baselines"] = {}
            for b in baselines:
                ranked = b.search(res["standalone"], DEPTH)
                recs = [{"id": p["id"], "start_s": p["start_s"], "words": p["words"],
                         "held": M.held_quotes(p["plain"], quotes)} for p in ranked]
                res["baselines"][b.name] = {
                    "retrieved": recs,
                    "metrics": score_ranking(recs, quotes, res["needs_all"]) if quotes else None}
        answer = res.pop("_answer")
        if judge is not None:
            res["judge"] = judge.score(item, answer)
        results.append(res)
    if progress:
        progress(len(items), len(items), "done")
    return results


RETRIEVAL_KEYS = ["hit@1", "hit@3", "hit@5", "hit@10", "mrr", "budget@300", "budget@600", "budget@1200"]


def _retrieval(rows: list[dict]) -> dict:
    rows = [r for r in rows if r]
    out = {"n": len(rows)}
    for key in RETRIEVAL_KEYS:
        out[key] = M.mean(r[key] for r in rows)
    return out


def _group(results: list[dict]) -> dict:
    answerable = [r for r in results if r["answerable"]]
    answered = [r for r in results if not r["refused"]]
    lat = [r["latency_s"] for r in results]
    g = {
        "n": len(results),
        "retrieval": _retrieval([r["metrics"] for r in answerable]),
        "refusal": M.refusal_stats([(bool(r["answerable"]), r["refused"]) for r in results]),
        "citation_validity": M.mean(float(r["citation_all_valid"]) for r in answered
                                    if r["citation_all_valid"] is not None),
        "citation_support": M.mean(float(r["citation_support"]) for r in answerable
                                   if r["citation_support"] is not None),
        "quote_support": M.mean(float(r["quote_support"]) for r in answerable
                                if r.get("quote_support") is not None),
        "answer_words_p50": M.percentile([r["answer_words"] for r in answered
                                          if r.get("answer_words") is not None], 0.5),
        "latency_p50_s": M.percentile(lat, 0.5),
        "latency_p95_s": M.percentile(lat, 0.95),
    }
    # 95% intervals of the shares that decide most comparisons (``metrics.interval``).
    g["intervals"] = {
        "hit@5": M.share(r["metrics"]["hit@5"] for r in answerable if r["metrics"]),
        "quote_support": M.share(r.get("quote_support") for r in answerable),
        "refusal_recall": M.share(r["refused"] for r in results if not r["answerable"]),
        "false_refusal_rate": M.share(r["refused"] for r in answerable),
    }
    names = sorted({n for r in results for n in r.get("baselines", {})})
    if names:
        g["baselines"] = {n: _retrieval([r["baselines"][n]["metrics"] for r in answerable]) for n in names}
    judged = [r["judge"] for r in results if r.get("judge")]
    if judged:
        scored = [j for j in judged if j.get("correctness") is not None]
        g["judge"] = {"faithfulness": M.mean(j["faithfulness"] for j in scored),
                      "correctness": M.mean(j["correctness"] for j in scored),
                      "scored": len(scored), "failed": len(judged) - len(scored)}
    return g


def aggregate(results: list[dict]) -> dict:
    types = sorted({r["type"] for r in results})
    out = {"overall": _group(results), "by_type": {t: _group([r for r in results if r["type"] == t])
                                                   for t in types}}
    t1 = [r["turn1"] for r in results if r.get("turn1") and r["type"] == "followup"]  # second turns' first
    if t1:
        out["followup_turn1"] = _retrieval([t["metrics"] for t in t1])
    return out
