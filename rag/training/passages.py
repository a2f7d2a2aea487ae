"""The passage reranker, trained on listeners' questions: a small cross-encoder that reads the
question with each of the hybrid's best passages and reorders them.

The hybrid (dense, BM25, sentence windows) puts a passage that holds the answer in its top 5 for
0.82 of the listeners' test questions and in its top 20 for far more: the passage is found, and
ranked below others about the same thing. A cross-encoder reads question and passage together.

- **Data:** every question of the corpus's train split asked as ``rag`` asks it (the adapter, the
  fitted hybrid) with the hybrid's top ``DEPTH`` passages (``passage_rows``). A passage is a positive
  when it holds a gold quote; the negatives are the others, hardest (best ranked) first: negatives
  mined from the first stage's own top hits.
- **Network:** ``rerank.CrossEncoder`` (the first ``layers`` layers of the tuned MiniLM, LoRA), a
  listwise loss over each question's passages (``rerank.Group``).
- **At query time** (``Retriever._rank``): the hybrid's best ``depth`` candidates are reordered by
  z(hybrid) + ``weight`` x z(cross) and keep the hybrid's scores in that new order, so nothing below
  them moves and the scores shown still fall with the rank. ``depth`` and ``weight`` are chosen on
  the validation split by hit@5 (then MRR).

Written beside the adapter as ``passages.safetensors``::

    python -m rag.training.passages --model-dir rag/models/podcast-minilm --steps 400 --layers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..evaluation import readers as R
from ..evaluation.metrics import held_quotes
from ..reranking import reorder
from .answering import TRAIN_EPISODES, _first, _say, build_indexes, rows_key
from .readers import corpus_items
from .rerank import Group, RerankRecipe

PASSAGES_FILE = "passages.safetensors"
DEPTH = 20                     # the hybrid's passages each question keeps for training and choosing
DEPTHS = (5, 8, 10, 15, 20)
WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)


def collect(adapter: Path, split: str, work: Path, limit: int | None, corpus: Path,
            depth: int = DEPTH) -> list[dict]:
    """Every question of ``split``'s episodes asked as rag asks it (in ``work``'s indexes): the
    hybrid's top ``depth`` passages, their scores, and which of them hold a gold quote."""
    from ..api import Assistant
    from ..config import Config

    items = corpus_items([split], corpus)
    episodes = _first(items, limit)
    config = Config(index_dir=work / "indexes", adapter=adapter, reranker=None, passages=None)
    rows, t0 = [], time.monotonic()
    for n, episode in enumerate(episodes, 1):
        assistant = Assistant.load(episode, backend="extractive", config=config)
        for it in R.as_eval_items(items[episode]):
            history = []
            if it.get("history"):
                first = it["history"][0]
                history = [(first, assistant.ask(first).text)]
            evidence = assistant.evidence(it["question"], k=depth, history=history)
            question, hits = evidence.question.standalone, evidence.hits
            quotes = it["gold_quotes"]
            rows.append({"id": it["id"], "episode": episode, "question": question,
                         "answerable": it["answerable"], "needs_all": bool(it.get("needs_all")),
                         "quotes": len(quotes),
                         "texts": [h.chunk.text for h in hits], "first": [h.score for h in hits],
                         "held": [held_quotes(h.chunk.text, quotes) if quotes else [] for h in hits]})
        eta = (time.monotonic() - t0) / n * (len(episodes) - n)
        _say(f"  {split} passages: {n}/{len(episodes)} episodes, {len(rows)} questions, "
             f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
    return rows


def passage_rows(adapter: Path, split: str, archive: Path, work: Path, limit: int | None,
                 corpus: Path = R.CORPUS) -> list[dict]:
    """``collect``'s rows, kept in ``work`` while the adapter, its fitted hybrid and the split's
    question files are unchanged."""
    path = work / f"passages-{split}-{limit}-{rows_key(adapter, split, limit, corpus)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    build_indexes(adapter, [split], archive, work, corpus, limit)
    rows = collect(adapter, split, work, limit, corpus)
    work.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)
    return rows


def answers(row: dict, order) -> bool:
    """Do the passages at ``order`` (indexes into the row) support the answer, as hit@k counts?"""
    held = set().union(*[set(row["held"][i]) for i in order]) if len(order) else set()
    return len(held) == row["quotes"] if row["needs_all"] else bool(held)


def groups_of(rows: list[dict]) -> list[Group]:
    """A training group for each answerable question with a passage that holds a quote: its
    passages that do, and the others hardest (best ranked) first."""
    out = []
    for r in rows:
        if not r["answerable"]:
            continue
        pos = tuple(t for t, h in zip(r["texts"], r["held"]) if h)
        neg = tuple(t for t, h in zip(r["texts"], r["held"]) if not h)
        if pos and neg:
            out.append(Group(r["question"], pos, neg))
    return out


def figures(rows: list[dict], cross: list[np.ndarray] | None, depth: int, weight: float) -> dict:
    """hit@5 and MRR (within the top ``DEPTH``) of the answerable questions, their top ``depth``
    reordered by ``weight`` (None: the hybrid's own order)."""
    hit5 = rr = n = 0.0
    for k, r in enumerate(rows):
        if not r["answerable"]:
            continue
        n += 1
        order = np.arange(len(r["texts"]))
        if cross is not None and depth > 1 and len(order) > 1:
            head = order[:depth]
            order = np.concatenate([head[reorder(np.asarray(r["first"][:depth]), cross[k][:depth], weight)],
                                    order[depth:]])
        hit5 += answers(r, order[:5])
        rank = next((i + 1 for i in range(len(order)) if answers(r, order[: i + 1])), None)
        rr += 1.0 / rank if rank else 0.0
    return {"hit@5": hit5 / max(n, 1), "mrr": rr / max(n, 1), "questions": int(n)}


def cross_scores(score_pairs, rows: list[dict]) -> list[np.ndarray]:
    qs = [r["question"] for r in rows for _ in r["texts"]]
    cs = [t for r in rows for t in r["texts"]]
    flat = np.asarray(score_pairs(qs, cs), dtype=np.float32) if qs else np.zeros(0, np.float32)
    out, at = [], 0
    for r in rows:
        out.append(flat[at:at + len(r["texts"])])
        at += len(r["texts"])
    return out


def main(argv=None) -> int:
    import torch

    from ..config import catalog_path
    from ..embedding import resolve_model_path
    from .lora import load_adapter
    from .rerank import RerankRun, save_reranker

    ap = argparse.ArgumentParser(description="train the passage reranker (a cross-encoder) on the listeners' corpus")
    ap.add_argument("--model-dir", type=Path, default=Path("rag/models/podcast-minilm"),
                    help="the adapter's folder; the reranker is written beside it")
    ap.add_argument("--out", type=Path, default=None, help=f"write {PASSAGES_FILE} here instead")
    ap.add_argument("--catalog", type=Path, default=None, help="the transcripts (default RAG_CATALOG)")
    ap.add_argument("--corpus", type=Path, default=R.CORPUS)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default MODEL_DIR/work)")
    ap.add_argument("--train-episodes", type=int, default=TRAIN_EPISODES)
    ap.add_argument("--limit", type=int, default=None, help="first N validation episodes (a probe)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--negatives", type=int, default=7)
    ap.add_argument("--tokens", type=int, default=160, help="question and passage tokens the network reads")
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--max-depth", type=int, default=max(DEPTHS),
                    help="rerank at most this many passages (each costs time at every answer)")
    args = ap.parse_args(argv)
    if args.max_depth < min(DEPTHS):
        ap.error(f"--max-depth is at least {min(DEPTHS)} (the depths tried: {', '.join(map(str, DEPTHS))})")
    if not 48 <= args.tokens <= 512:
        ap.error("--tokens is between 48 and 512")
    if args.steps < 1 or args.layers not in range(1, 7):
        ap.error("--steps is at least 1 and --layers between 1 and 6")
    adapter = args.model_dir / "adapter.safetensors"
    if not adapter.is_file():
        ap.error(f"no adapter at {adapter}")
    work = args.work or args.model_dir / "work"
    out = args.out or args.model_dir
    archive = args.catalog or catalog_path()
    t0 = time.monotonic()
    train = passage_rows(adapter, "train", archive, work, args.train_episodes, args.corpus)
    val = passage_rows(adapter, "validation", archive, work, args.limit, args.corpus)
    groups = groups_of(train)
    _say(f"passage reranker data: {len(groups)} training groups from {len(train)} questions, "
         f"{len(val)} validation questions ({time.monotonic() - t0:.0f} s)")
    recipe = replace(RerankRecipe(), steps=args.steps, layers=args.layers, lr=args.lr, rank=args.rank,
                     alpha=2.0 * args.rank, negatives=args.negatives, seed=args.seed,
                     question_tokens=32, candidate_tokens=args.tokens - 32)
    run_dir = work / (f"passages-{args.layers}l-{args.steps}-{args.lr:g}-{args.negatives}-{args.tokens}"
                      f"-{args.rank}-{args.seed}")
    run = RerankRun(recipe, run_dir, resolve_model_path("all-MiniLM-L6-v2"), load_adapter(adapter))
    run.train(groups=groups)
    model = run.model
    model.model.eval()

    def score_pairs(questions, candidates):
        with torch.inference_mode():
            return np.concatenate([model.scores(questions[s:s + 128], candidates[s:s + 128]).numpy()
                                   for s in range(0, len(questions), 128)] or [np.zeros(0)])

    _say(f"scoring {sum(len(r['texts']) for r in val)} validation passages")
    cross = cross_scores(score_pairs, val)
    table = {"hybrid": figures(val, None, 0, 0.0), "cross-encoder alone": figures(val, cross, DEPTH, 1e6)}
    best = (table["hybrid"]["hit@5"], table["hybrid"]["mrr"], 0, 0.0)
    for depth in (d for d in DEPTHS if d <= args.max_depth):
        for weight in WEIGHTS:
            got = figures(val, cross, depth, weight)
            table[f"depth {depth}, weight {weight:g}"] = got
            if (got["hit@5"], got["mrr"]) > best[:2]:
                best = (got["hit@5"], got["mrr"], depth, weight)
    _say("validation (answerable questions): hit@5, MRR within the top 20")
    for k, v in table.items():
        _say(f"  {k:<28} {v['hit@5']:.3f}  {v['mrr']:.3f}")
    if not best[2]:
        _say("warning: no depth and weight beat the hybrid on validation; the file is written for "
             "the record, and rag would use it if it sat beside the adapter (RAG_RERANK=off)")
    depth, weight = best[2] or min(10, args.max_depth), best[3] or 1.0
    result = {"recipe": recipe.to_json(), "groups": len(groups), "train_questions": len(train),
              "validation_questions": len(val), "validation": table,
              "chosen": {"depth": depth, "weight": weight, "hit@5": best[0], "mrr": best[1]},
              "seconds": round(time.monotonic() - t0)}
    _say(f"chosen: depth {depth}, weight {weight:g}: hit@5 {table['hybrid']['hit@5']:.3f} -> {best[0]:.3f}, "
         f"MRR {table['hybrid']['mrr']:.3f} -> {best[1]:.3f}")
    out.mkdir(parents=True, exist_ok=True)
    save_reranker(out / PASSAGES_FILE, model,
                  meta={"recipe": recipe.to_json(), "base": "all-MiniLM-L6-v2", "adapter": load_adapter(adapter).digest,
                        "role": "passages", "groups": len(groups), "figures": result,
                        "depth": depth, "weight": weight})
    (run_dir / "figures.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    _say(f"wrote {out / PASSAGES_FILE} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
