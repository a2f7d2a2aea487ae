"""The sentence selector, trained on listeners' questions: a small cross-encoder that reads the
question with each stretch the extractive answer could quote, and the refusal that reads its score.

The first stage (``SpanSelector``: similarities, word overlap, the passage's rank) finds the right
passage far more often than it quotes the right stretch of it (hit@5 0.82, quote support 0.43 on the
listeners' test split): a stretch about the same thing scores as well as the one that answers. A
cross-encoder reads question and stretch together and can tell them apart.

- **Data:** every question of the corpus's train split asked as ``rag`` asks it (the adapter, the
  fitted hybrid, the top passages), and every stretch those passages offer (``answering.collect``).
  A stretch is a positive when it holds a gold quote; the negatives are the other stretches, hardest
  (best first-stage score) first: the near misses of the same passages and their neighbours.
- **Network:** ``rerank.CrossEncoder`` (the first ``layers`` layers of the tuned MiniLM, LoRA),
  listwise loss over each question's stretches (``rerank.Group``).
- **At query time** (``ExtractiveAnswerer._scored``): the ``depth`` best stretches of the first
  stage are rescored as first + ``weight`` x cross / 20; ``depth`` and ``weight`` are chosen on the
  validation split, where also the probability that the best stretch answers is fitted (answerable
  against near-miss unanswerable questions) and the refusal policy that reads it. Both are written
  only with ``--refusal fit``: by default the answer keeps the adapter's refusal (the fitted one
  refused a quarter of #260's answerable questions, EXPERIMENTS.md).

Written beside the adapter as ``reranker.safetensors`` (its settings in the file's metadata)::

    python -m rag.training.selector --model-dir rag/models/podcast-minilm --steps 400 --layers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..evaluation import readers as R
from .answering import MAX_FALSE_REFUSALS, TRAIN_EPISODES, rows_for, weighed
from .rerank import Group, RerankRecipe, logistic_1d

DEPTHS = (4, 6, 8, 12)
WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
CROSS_SCALE = 20.0


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def groups_of(rows: list[dict], depth: int = 16) -> list[Group]:
    """A training group for each answerable question with a stretch that holds its quote: its
    positives, and the other stretches of its first stage's best ``depth``, hardest first."""
    out = []
    for r in rows:
        if not r["answerable"] or not r["texts"]:
            continue
        order = np.argsort(-np.asarray(r["first"]), kind="stable")
        labels = [bool(r["spans"][i][-1]) for i in order]
        texts = [r["texts"][i] for i in order]
        pos = tuple(t for t, y in zip(texts, labels) if y)
        neg = tuple(t for t, y in zip(texts[:depth], labels[:depth]) if not y)
        if pos and neg:
            out.append(Group(r["question"], pos, neg))
    return out


def cross_scores(score_pairs, rows: list[dict], depth: int) -> list[np.ndarray]:
    """The cross-encoder's score of each row's ``depth`` best first-stage stretches (in that order)."""
    qs, cs, sizes = [], [], []
    for r in rows:
        order = np.argsort(-np.asarray(r["first"]), kind="stable")[:depth]
        qs += [r["question"]] * len(order)
        cs += [r["texts"][i] for i in order]
        sizes.append(len(order))
    flat = np.asarray(score_pairs(qs, cs), dtype=np.float32) if qs else np.zeros(0, np.float32)
    out, at = [], 0
    for n in sizes:
        out.append(flat[at:at + n])
        at += n
    return out


def picked_right(rows: list[dict], cross: list[np.ndarray] | None, depth: int, weight: float) -> float:
    """Share of answerable questions whose best stretch (first stage, rescored over its ``depth``
    best by ``weight``) holds a gold quote: what quote support counts for the first stretch."""
    right = n = 0
    for k, r in enumerate(rows):
        if not r["answerable"]:
            continue
        n += 1
        if not r["texts"]:
            continue
        first = np.asarray(r["first"])
        order = np.argsort(-first, kind="stable")[:depth]
        score = first[order] + (weight * cross[k][: len(order)] / CROSS_SCALE if cross is not None else 0.0)
        right += bool(r["spans"][order[int(np.argmax(score))]][-1])
    return right / max(n, 1)


def fit_probability(rows: list[dict], cross: list[np.ndarray], steps: int = 3000) -> dict:
    """P(the question is answered) from the best cross score: a logistic fit on answerable against
    near-miss unanswerable questions."""
    x = np.array([float(c.max()) if len(c) else -1e3 for c in cross])
    y = np.array([1.0 if r["answerable"] else 0.0 for r in rows])
    keep = x > -1e3
    x, y = x[keep], y[keep]
    weight, bias = logistic_1d(x, y, steps)
    p = 1 / (1 + np.exp(-(x * weight + bias)))
    return {"weight": float(weight), "bias": float(bias), "examples": int(len(y)),
            "accuracy": float(((p >= 0.5) == (y == 1)).mean())}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description="train the sentence selector (a cross-encoder) on the listeners' corpus")
    ap.add_argument("--model-dir", type=Path, default=Path("rag/models/podcast-minilm"),
                    help="the adapter's folder; the selector is written beside it")
    ap.add_argument("--out", type=Path, default=None, help="write reranker.safetensors here instead")
    ap.add_argument("--catalog", type=Path, default=None, help="the transcripts (default RAG_CATALOG)")
    ap.add_argument("--corpus", type=Path, default=R.CORPUS)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default MODEL_DIR/work)")
    ap.add_argument("--train-episodes", type=int, default=TRAIN_EPISODES)
    ap.add_argument("--limit", type=int, default=None, help="first N validation episodes (a probe)")
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--negatives", type=int, default=7)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--refusal", choices=("keep", "fit"), default="keep",
                    help="keep: the answer keeps the adapter's refusal (the selector only chooses the "
                         "stretch); fit: write the refusal fitted here with the selector's probability "
                         "(measured: it does not transfer from listeners' near misses to #260's questions)")
    ap.add_argument("--max-depth", type=int, default=max(DEPTHS),
                    help="rescore at most this many stretches (each costs time at every answer)")
    return ap


def main(argv=None) -> int:
    import torch

    from ..config import catalog_path
    from ..embedding import resolve_model_path
    from ..reranking import calibrated
    from .answering import fit_refusal, refusal_figures
    from .lora import load_adapter
    from .rerank import RerankRun, save_reranker
    from ..answer.refusal import POLICIES

    ap = _parser()
    args = ap.parse_args(argv)
    if args.max_depth < min(DEPTHS):
        ap.error(f"--max-depth is at least {min(DEPTHS)} (the depths tried: {', '.join(map(str, DEPTHS))})")
    adapter = args.model_dir / "adapter.safetensors"
    if not adapter.is_file():
        ap.error(f"no adapter at {adapter}")
    work = args.work or args.model_dir / "work"
    out = args.out or args.model_dir
    archive = args.catalog or catalog_path()
    t0 = time.monotonic()
    train = rows_for(adapter, "train", archive, work, args.train_episodes, args.corpus)
    val = rows_for(adapter, "validation", archive, work, args.limit, args.corpus)
    groups = groups_of(train)
    _say(f"selector data: {len(groups)} training groups from {len(train)} questions, {len(val)} "
         f"validation questions ({time.monotonic() - t0:.0f} s)")
    recipe = replace(RerankRecipe(), steps=args.steps, layers=args.layers, lr=args.lr, rank=args.rank,
                     alpha=2.0 * args.rank, negatives=args.negatives, seed=args.seed,
                     candidate_tokens=96, question_tokens=40)
    run_dir = work / f"selector-{args.layers}l-{args.steps}-{args.lr:g}-{args.negatives}-{args.rank}-{args.seed}"
    run = RerankRun(recipe, run_dir, resolve_model_path("all-MiniLM-L6-v2"), load_adapter(adapter))
    run.train(groups=groups)
    model = run.model
    model.model.eval()

    def score_pairs(questions, candidates):
        with torch.inference_mode():
            return np.concatenate([model.scores(questions[s:s + 256], candidates[s:s + 256]).numpy()
                                   for s in range(0, len(questions), 256)] or [np.zeros(0)])

    deepest = max(DEPTHS)
    cross = cross_scores(score_pairs, val, deepest)
    table = {"first stage": picked_right(val, None, deepest, 0.0),
             "cross-encoder alone": picked_right(val, cross, deepest, 1e6)}
    best = (table["first stage"], 0, 0.0)
    for depth in (d for d in DEPTHS if d <= args.max_depth):
        for weight in WEIGHTS:
            got = picked_right(val, cross, depth, weight)
            table[f"depth {depth}, weight {weight:g}"] = got
            if got > best[0] + 1e-9:
                best = (got, depth, weight)
    _say("validation: share of answerable questions whose chosen stretch holds a gold quote")
    for k, v in table.items():
        _say(f"  {k:<28} {v:.3f}")
    if not best[1]:
        _say("warning: no depth and weight beat the first stage on validation; the file is written "
             "for the record, and rag would use it if it sat beside the adapter (RAG_RERANK=off)")
    chosen_depth, chosen_weight = best[1] or min(6, args.max_depth), best[2] or 1.0
    # The refusal that reads the selector: P(answered) from the best cross score over the chosen
    # depth, and the policy's weights and threshold, all on validation.
    cut = [c[:chosen_depth] for c in cross]
    probability = fit_probability(val, cut)
    base = POLICIES["all-MiniLM-L6-v2+podcast"]
    with_answer = [dict(r, refusal=dict(r["refusal"], answer=calibrated(probability, float(c.max())) if len(c) else 0.0))
                   for r, c in zip(val, cut)]
    policy, refusal = fit_refusal(with_answer, with_answer, base, MAX_FALSE_REFUSALS)
    before = refusal_figures([{"answerable": r["answerable"], "confidence": weighed(base, r["refusal"])}
                              for r in val], base.threshold)
    figures = {"recipe": recipe.to_json(), "groups": len(groups), "train_questions": len(train),
               "validation_questions": len(val), "picked_right": table,
               "chosen": {"depth": chosen_depth, "weight": chosen_weight, "picked_right": best[0]},
               "probability": probability, "refusal": {"shipped policy": before, "fitted": refusal}}
    _say(f"chosen: depth {chosen_depth}, weight {chosen_weight:g}: {best[0]:.3f} "
         f"(first stage {table['first stage']:.3f}); refusal recall {before['refusal_recall']:.3f} -> "
         f"{refusal['refusal_recall']:.3f} at false refusals {before['false_refusals']:.3f} -> "
         f"{refusal['false_refusals']:.3f}")
    figures["refusal_written"] = args.refusal
    out.mkdir(parents=True, exist_ok=True)
    # Without "calibration" and "policy" the answer reads the adapter's answer head and refusal
    # policy as before, and the selector only changes which stretch is quoted.
    fitted = {"calibration": probability, "policy": asdict(policy)} if args.refusal == "fit" else {}
    save_reranker(out / "reranker.safetensors", model,
                  meta={"recipe": recipe.to_json(), "base": "all-MiniLM-L6-v2", "adapter": load_adapter(adapter).digest,
                        "role": "selector", "groups": len(groups), "figures": figures,
                        "depth": chosen_depth, "weight": chosen_weight, **fitted})
    (run_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    _say(f"wrote {out / 'reranker.safetensors'} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
