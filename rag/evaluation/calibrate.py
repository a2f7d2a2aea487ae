"""Refusal threshold calibration: `python -m rag.evaluation.calibrate --split dev`.

Retrieves for every item (follow-ups condensed with their first question, as rag does), computes
the extractive answerer's confidence and prints the precision/recall/false-refusal table with the
threshold that maximises refusal recall subject to false refusals <= 0.10. Tune on dev only.
"""

from __future__ import annotations

import argparse
import sys

from .metrics import calibrate, load_items


def confidences(assistant, items, k: int = 5) -> list[dict]:
    from ..answer.extractive import confidence

    rows = []
    for it in items:
        history = []
        if it.get("type") == "followup" and it.get("history"):
            first = it["history"][0]
            history = [(first, assistant.ask(first, k=k).text)]
        q = assistant.standalone(it["question"], history)
        hits = assistant.search(q, k=k)
        rows.append({"id": it["id"], "type": it["type"], "answerable": bool(it["answerable"]),
                     "confidence": float(confidence(q, hits))})
    return rows


def main(argv=None) -> int:
    from ..api import Assistant
    from .cli import DEFAULT_FILE, select
    from .report import tradeoff_table

    ap = argparse.ArgumentParser(description="calibrate the extractive refusal threshold")
    ap.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    ap.add_argument("--split", choices=["dev", "test", "all"], default="dev")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--max-false-refusals", type=float, default=0.10)
    args = ap.parse_args(argv)
    if args.split != "dev":
        print("warning: calibrating on a split other than dev", file=sys.stderr)
    assistant = Assistant.load(backend="extractive")
    rows = confidences(assistant, select(load_items(args.file), args.split), k=args.k)
    in_use = assistant.extractive.policy.threshold
    text, _ = tradeoff_table(rows, in_use)
    best = calibrate(rows, args.max_false_refusals)
    print(text)
    print(f"\nthreshold in use: {in_use}")
    print(f"recommended: {best} (max refusal recall with false refusals <= {args.max_false_refusals})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
