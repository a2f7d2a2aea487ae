"""Speed of the core path, on this machine, in one run:

1. index build time for the shipped episode (cold: empty embedding cache; warm: rebuild that
   reuses cached embeddings);
2. warm `search` latency: median / p90 over the question set's questions, model and index loaded;
3. cold one-shot `rag ask` wall time (a fresh process per question), side by side with a plain
   sentence-transformers + FAISS one-shot script reading the same index (bench/reference_oneshot.py).

Targets (issue 2): warm search <= 15 ms; cold `rag ask` <= 2 s.
Usage: python bench/speed.py [--runs 5] [--queries 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Why did Runway build its own research team?"


def timed(cmd: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"command failed: {' '.join(cmd)}\n{proc.stderr}")
    return elapsed


def questions(limit: int) -> list[str]:
    """The evaluation set's questions (the same file `rag eval` reads), in file order."""
    from rag.evaluation.metrics import load_items

    return [item["question"] for item in load_items(ROOT / "eval" / "questions.jsonl")][:limit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="cold runs per command (median reported)")
    ap.add_argument("--queries", type=int, default=200, help="warm search queries")
    args = ap.parse_args()
    rag = [sys.executable, "-m", "rag.cli"]

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RAG_INDEX_DIR": tmp}
        cold_build = timed(rag + ["index"], env)
        warm_build = timed(rag + ["index"], env)
        print(f"index build (shipped episode): cold {cold_build:.1f} s, "
              f"rebuild with cached embeddings {warm_build:.1f} s")

        os.environ["RAG_INDEX_DIR"] = tmp
        from rag.api import Assistant

        assistant = Assistant.load(backend="extractive")
        qs = questions(args.queries)
        for q in qs[:5]:
            assistant.search(q)
        latencies = []
        for q in qs:
            t0 = time.perf_counter()
            assistant.search(q, k=5)
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        median = statistics.median(latencies)
        p90 = latencies[int(0.9 * (len(latencies) - 1))]
        print(f"warm search: median {median:.1f} ms, p90 {p90:.1f} ms over {len(latencies)} queries "
              f"(target <= 15 ms: {'PASS' if median <= 15 else 'MISS'})")

        version = (Path(tmp) / "practical-ai-260" / "CURRENT").read_text().strip()
        folder = str(Path(tmp) / "practical-ai-260" / version)
        ours, ref = [], []
        for _ in range(args.runs):  # interleaved, so both see the same machine load
            ours.append(timed(rag + ["ask", QUESTION], env))
            ref.append(timed([sys.executable, str(ROOT / "bench" / "reference_oneshot.py"), folder, QUESTION], env))
        m_ours, m_ref = statistics.median(ours), statistics.median(ref)
        print(f"cold one-shot `rag ask`: median {m_ours:.2f} s over {args.runs} runs "
              f"(target <= 2 s: {'PASS' if m_ours <= 2 else 'MISS'})")
        print(f"plain sentence-transformers + FAISS one-shot: median {m_ref:.2f} s")
        print(f"ratio reference / rag ask: {m_ref / m_ours:.1f}x")


if __name__ == "__main__":
    main()
