"""What a cross-encoder reranker would cost at query time, on this machine.

A cross-encoder reads the question and each candidate together, so nothing can be computed at
index time: every query pays one full MiniLM pass per (question, candidate) pair. This runs the
same network the retriever uses (all-MiniLM-L6-v2 in ONNX, the shipped adapter merged: a
cross-encoder built from it has the same six layers) over N pairs of realistic lengths and prints
the median time against the warm `rag ask` budget (60 ms, issue 10), beside the warm `rag ask`
itself.

    python bench/reranker_cost.py [--runs 7]

Lengths: a question is ~16 tokens; a sentence window (three sentences) ~64; a passage ~170
(200-word chunks are cut at 256 tokens).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUDGET_MS = 60.0
QUESTION = "Why did Runway build its own research team?"


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    from rag.api import Assistant

    assistant = Assistant.load(backend="extractive")
    embedder = assistant.retriever.embedder
    passage = assistant.retriever.chunks[10].text
    words = passage.split()
    ask = median_ms(lambda: assistant.ask(QUESTION), args.runs)
    print(f"embedder: {embedder.name}")
    print(f"warm rag ask (no reranker): p50 {ask:.1f} ms")
    print()
    print("| pairs | tokens/pair | median ms | x budget (60 ms) |")
    print("|---|---|---|---|")
    for pairs, n_words in ((10, 36), (20, 36), (10, 110), (20, 110), (30, 110)):
        text = f"{QUESTION} {' '.join(words[:n_words])}"
        batch = [f"{text} {i}" for i in range(pairs)]
        tokens = embedder.count_tokens(text)
        ms = median_ms(lambda: embedder.embed(batch), args.runs)
        print(f"| {pairs} | {tokens} | {ms:.0f} | {ms / BUDGET_MS:.1f} |")


if __name__ == "__main__":
    main()
