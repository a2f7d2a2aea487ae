"""Refusal threshold calibration: `python -m rag.evaluation.calibrate --split dev`.

Retrieves for every item (follow-ups condensed with their first question, as rag does), computes
the extractive answerer's confidence and prints the precision/recall/false-refusal table with the
threshold that maximises refusal recall subject to false refusals <= 0.10. Tune on dev only.
"""

from __future__ import annotations

import argparse
import sys

from .metrics import calibrate, load_items


FEATURES = ("answer", "sentence", "dense", "coverage", "local_coverage", "semantic_coverage", "agreement", "mismatch")
FIELDS = {"answer": "answer_weight", "sentence": "sentence_weight", "dense": "dense_weight", "coverage": "coverage_weight",
          "local_coverage": "local_coverage_weight", "semantic_coverage": "semantic_coverage_weight",
          "agreement": "agreement_weight",
          "mismatch": "type_weight"}


def confidences(assistant, items, k: int = 5) -> list[dict]:
    from ..answer.refusal import confidence, features

    rows = []
    for it in items:
        history = []
        if it.get("type") == "followup" and it.get("history"):
            first = it["history"][0]
            history = [(first, assistant.ask(first, k=k).text)]
        evidence = assistant.evidence(it["question"], k=k, history=history)   # as answers retrieve
        # With a reranker, its probability that the best stretch answers is the answer feature.
        answer = (assistant.extractive._scored(evidence.question.standalone, evidence.hits)[1]
                  if evidence.hits else None)
        rows.append({"id": it["id"], "type": it["type"], "answerable": bool(it["answerable"]),
                     "confidence": float(confidence(evidence, assistant.extractive.policy, answer)),
                     "features": features(evidence, answer)})
    return rows


def fit_logistic(rows: list[dict], l2: float = 1.0, steps: int = 20000, lr: float = 1.0) -> dict:
    """L2-regularised logistic regression of "unanswerable" on FEATURES (plain gradient descent).

    Returns confidence weights: the negated coefficients scaled so the positive ones sum to 1 (the
    mismatch feature keeps its own sign as a penalty), ready for ``RefusalPolicy``.
    """
    import numpy as np

    x = np.array([[r["features"][f] for f in FEATURES] for r in rows], dtype=np.float64)
    y = np.array([0.0 if r["answerable"] else 1.0 for r in rows])
    w, b = np.zeros(x.shape[1]), 0.0
    # Signs are constrained (projected gradient descent): more similarity or coverage is never
    # evidence *against* an answer, and a type mismatch never evidence for one. Unconstrained, the
    # dev set's near-miss unanswerables ("what is the name of the Nvidia model...", which match a
    # sentence well) gave similarity a negative weight, which would not hold on another episode.
    penalty = np.array([f == "mismatch" for f in FEATURES])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        w -= lr * (x.T @ (p - y) + l2 * w) / len(y)
        b -= lr * float(np.mean(p - y))
        w = np.where(penalty, np.maximum(w, 0.0), np.minimum(w, 0.0))
    conf = -w
    positive = [i for i, f in enumerate(FEATURES) if f != "mismatch"]
    scale = float(conf[positive].clip(min=0).sum()) or 1.0
    out = {FIELDS[f]: round(float(conf[i] if f != "mismatch" else -conf[i]) / scale, 3)
           for i, f in enumerate(FEATURES)}
    out.update(coefficients=[round(float(c), 3) for c in w], intercept=round(float(b), 3))
    return out


def catalog_items(assistant, source: str, split: str, mined: int) -> list[dict]:
    """The hand-written catalog questions of ``split`` whose episodes the index holds, and
    ``mined`` host questions from its held-out episodes (answerable, each in its own episode; a
    sample other than ``rag eval --catalog``'s)."""
    from pathlib import Path

    from ..config import catalog_path
    from ..errors import InputError
    from .catalog import QUESTIONS, mined_questions

    path = Path(source) if source else catalog_path()
    if path is None or not path.exists():
        raise InputError("the mined questions need the catalog the index was built from: give it "
                         "(--catalog ARCHIVE) or set RAG_CATALOG")
    episodes = {e["id"] for e in assistant.episodes()}
    written = [it for it in load_items(QUESTIONS) if (split == "all" or it.get("split") == split)
               and set(it.get("gold_episodes") or []) <= episodes]
    asked = [{"id": it["id"], "type": "mined", "question": it["question"], "answerable": True}
             for it in mined_questions(path, episodes, limit=mined, seed=1)]
    return written + asked


def main(argv=None) -> int:
    from ..api import Assistant
    from .cli import DEFAULT_FILE, select
    from .report import tradeoff_table

    ap = argparse.ArgumentParser(description="calibrate the extractive refusal threshold")
    ap.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    ap.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--max-false-refusals", type=float, default=0.10)
    ap.add_argument("--fit", action="store_true",
                    help="refit the confidence weights (logistic regression) before choosing the threshold")
    ap.add_argument("--catalog", nargs="?", const="", default=None, metavar="SOURCE",
                    help="calibrate for an index of many episodes (--index): the split of "
                         "eval/catalog_questions.jsonl and --mined host questions from its held-out "
                         "episodes; SOURCE: the catalog it was built from (default RAG_CATALOG)")
    ap.add_argument("--index", default=None, help="the index to ask (default: the shipped episode)")
    ap.add_argument("--mined", type=int, default=100, help="mined (answerable) questions with --catalog")
    args = ap.parse_args(argv)
    if args.split != "dev":
        print("warning: calibrating on a split other than dev", file=sys.stderr)
    assistant = Assistant.load(args.index, backend="extractive")
    if args.catalog is not None:
        items = catalog_items(assistant, args.catalog, args.split, args.mined)
    else:
        items = select(load_items(args.file), args.split)
    rows = confidences(assistant, items, k=args.k)
    in_use = assistant.extractive.policy.threshold
    if args.fit:
        from dataclasses import replace

        fitted = fit_logistic(rows)
        print(f"fitted weights: {fitted}")
        policy = replace(assistant.extractive.policy, **{k: v for k, v in fitted.items()
                                                         if k.endswith("_weight")})
        for r in rows:   # confidences under the refitted weights, from the same features
            r["confidence"] = sum(w * r["features"][name] for name, w in policy.weights().items())
    text, _ = tradeoff_table(rows, in_use)
    best = calibrate(rows, args.max_false_refusals)
    print(text)
    print(f"\nthreshold in use: {in_use}")
    print(f"recommended: {best} (max refusal recall with false refusals <= {args.max_false_refusals})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
