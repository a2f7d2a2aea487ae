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
    from ..answer.extractive import confidence, features

    rows = []
    for it in items:
        history = []
        if it.get("type") == "followup" and it.get("history"):
            first = it["history"][0]
            history = [(first, assistant.ask(first, k=k).text)]
        q = assistant.standalone(it["question"], history)
        hits = assistant.search(q, k=k, refusal_features=True)  # as answers retrieve
        # With a reranker, its probability that the best stretch answers is the answer feature.
        answer = assistant.extractive._scored(q, tuple(hits))[1] if hits else None
        rows.append({"id": it["id"], "type": it["type"], "answerable": bool(it["answerable"]),
                     "confidence": float(confidence(q, hits, assistant.extractive.policy, answer)),
                     "features": features(q, hits, answer)})
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
    args = ap.parse_args(argv)
    if args.split != "dev":
        print("warning: calibrating on a split other than dev", file=sys.stderr)
    assistant = Assistant.load(backend="extractive")
    rows = confidences(assistant, select(load_items(args.file), args.split), k=args.k)
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
