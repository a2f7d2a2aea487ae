"""Warm `ask` latency (extractive, the shipped episode's index), side by side for two checkouts.

    python bench/ask_latency.py [--baseline PATH] [--rounds 2]

Each round runs this checkout and then ``--baseline`` (another checkout of rag, e.g. a git
worktree of an earlier commit) in fresh processes, alternately, so both see the same machine
state. Each process loads the assistant, warms up on 20 dev questions, then answers every dev
question of eval/questions.jsonl three times, each time with its query vectors encoded afresh (a
retriever keeps the last questions' vectors: a repeat would time a cache); the median and p90 per
process are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = r'''
import json, statistics, sys, time
sys.path.insert(0, ".")
from rag.api import Assistant
a = Assistant.load(backend="extractive")
qs = [json.loads(l)["question"] for l in open("eval/questions.jsonl") if json.loads(l).get("split") == "dev"]
for q in qs[:20]:
    a.ask(q)
times = []
forget = getattr(getattr(a.retriever, "query_vector", None), "cache_clear", lambda: None)
for _ in range(3):
    for q in qs:
        forget()   # each ask encodes its question, as a new question does (not the repeat's cached vector)
        t = time.perf_counter(); a.ask(q); times.append((time.perf_counter() - t) * 1000)
times.sort()
print(json.dumps({"n": len(times), "p50_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9)]}))
'''


def measure(checkout: Path, index_dir: Path) -> dict:
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir)}
    out = subprocess.run([sys.executable, "-c", _CHILD], cwd=checkout, env=env, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout to compare with")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    checkouts = [("this checkout", ROOT)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    with tempfile.TemporaryDirectory(prefix="rag-ask-latency-") as tmp:
        print("| round | checkout | questions | p50 ms | p90 ms |\n|---|---|---|---|---|")
        for r in range(1, args.rounds + 1):
            for label, path in checkouts:
                got = measure(path, Path(tmp) / label.replace(" ", "-"))
                print(f"| {r} | {label} | {got['n']} | {got['p50_ms']:.2f} | {got['p90_ms']:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
