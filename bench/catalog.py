"""Speed and memory of a catalog index (many episodes), on this machine, in one run:

    python bench/catalog.py --index NAME [--runs 5] [--queries 100]

1. the index: episodes, passages, sentence windows, size on disk per file;
2. start: ``Assistant.load`` in this process (seconds), and cold one-shot `rag ask --index NAME`
   (a fresh process per run, median);
3. warm `search` and extractive `ask` latency (median, p90) over a fixed list of questions that
   name no episode;
4. query-time memory: peak RSS of this process after loading and answering.

Targets (issue 11): warm search p50 <= 50 ms, cold `rag ask --index catalog` <= 2.5 s, query-time
RSS <= 2.5 GB. HTTP: `python bench/load.py --index NAME --concurrency 2 --endpoints search`
(target >= 50 req/s with 2 clients).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUESTIONS = [
    "How do you deploy a machine learning model to production?", "What is transfer learning?",
    "Why are GPUs used for training neural networks?", "How do you label data for supervised learning?",
    "What is the difference between AI and machine learning?", "How do transformers work?",
    "What advice do you have for someone starting in data science?", "How do you evaluate a chatbot?",
    "What is reinforcement learning used for?", "How do you deal with bias in training data?",
    "What programming language do data scientists use most?", "How big should a training set be?",
    "What is MLOps?", "How do you run models on edge devices?", "What is a vector database?",
    "How did the guest get into AI?", "What are large language models bad at?",
    "How do you fine-tune a model on your own data?", "What is the future of AI in healthcare?",
    "Which open source tools do you recommend?",
]


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--runs", type=int, default=5, help="cold one-shot runs (median)")
    ap.add_argument("--queries", type=int, default=100, help="warm queries for each of search and ask")
    args = ap.parse_args()

    from rag.api import Assistant

    t0 = time.perf_counter()
    assistant = Assistant.load(args.index, backend="extractive")
    load_s = time.perf_counter() - t0
    index = assistant.index
    sizes = sorted(((p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*")), p.name)
                    for p in index.path.iterdir()), reverse=True)
    print(f"index {args.index}: {len(assistant.episodes())} episodes, {len(index.chunks)} passages, "
          f"{len(index.sentence_rows)} sentence windows, {sum(s for s, _ in sizes) / 1e6:.0f} MB on disk "
          f"({', '.join(f'{n} {s / 1e6:.0f} MB' for s, n in sizes[:5])})")
    print(f"load in this process: {load_s:.2f} s")

    qs = [QUESTIONS[i % len(QUESTIONS)] for i in range(args.queries)]
    for q in QUESTIONS[:3]:
        assistant.ask(q)  # warm-up
    for name, fn in (("search", lambda q: assistant.search(q, k=5)), ("ask", lambda q: assistant.ask(q))):
        times = []
        for q in qs:
            t = time.perf_counter()
            fn(q)
            times.append(1000 * (time.perf_counter() - t))
        print(f"warm {name}: p50 {statistics.median(times):.1f} ms, p90 {percentile(times, 0.9):.1f} ms "
              f"({len(times)} queries)")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"query-time peak RSS: {rss:.0f} MB")

    cold = []
    for _ in range(args.runs):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "rag.cli", "ask", QUESTIONS[0], "--index", args.index],
                              cwd=ROOT, capture_output=True, text=True)
        cold.append(time.perf_counter() - t)
        if proc.returncode != 0:
            sys.exit(f"rag ask failed: {proc.stderr}")
    print(f"cold rag ask --index {args.index}: median {statistics.median(cold):.2f} s "
          f"(runs: {', '.join(f'{c:.2f}' for c in cold)})")


if __name__ == "__main__":
    main()
