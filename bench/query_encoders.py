"""Query encoders side by side, on this machine, in one run: ONNX Runtime (rag/onnx_minilm.py)
against the NumPy forward pass (rag/minilm.py), both through SentenceTransformerEmbedder.embed_query
(and so through the coalescer), as the CLI and the server use them.

1. construction time (ONNX: from its cache; and once building the graph into an empty cache);
2. one caller: latency of embed_query over distinct short questions, after a warm-up (median, p90);
3. two threads calling embed_query at once: queries/s (and how many forward passes served them);
4. cold one-shot `rag ask` wall time with each encoder (a fresh process; NumPy by hiding
   onnxruntime from the import system), interleaved, over the default index.

Usage: python bench/query_encoders.py [--queries 200] [--runs 3] [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
QUESTION = "How did Runway start?"
ENCODERS = ("numpy", "onnx")


def questions(n: int) -> list[str]:
    from rag.evaluation.metrics import load_items

    base = [item["question"] for item in load_items(ROOT / "eval" / "questions.jsonl")]
    out, round_ = [], 0
    while len(out) < n:  # distinct texts beyond the question set: numbered variants
        out += [q if round_ == 0 else f"{q.rstrip('?')} (part {round_})?" for q in base]
        round_ += 1
    return out[:n]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[int(q * (len(values) - 1))]


def two_threads(embedder, qs: list[str], seconds: float) -> tuple[float, int, int]:
    batcher = embedder._query_batches
    batches0, items0 = batcher.batches, batcher.items
    stop = time.perf_counter() + seconds
    counts = [0, 0]

    def worker(n: int) -> None:
        i = n
        while time.perf_counter() < stop:
            embedder.embed_query(qs[i % len(qs)])
            counts[n] += 1
            i += 2

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return sum(counts) / elapsed, batcher.items - items0, batcher.batches - batches0


def cold_ask(encoder: str) -> float:
    hide = "import sys; sys.modules['onnxruntime'] = None; " if encoder == "numpy" else "import sys; "
    code = hide + "from rag.cli import main; sys.exit(main(sys.argv[1:]))"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "ask", QUESTION], cwd=ROOT, capture_output=True,
                          text=True, env={k: v for k, v in os.environ.items()
                                          if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")})
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"rag ask failed ({encoder}):\n{proc.stderr}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3, help="cold `rag ask` runs per encoder")
    ap.add_argument("--seconds", type=float, default=5.0, help="two-thread run per encoder")
    args = ap.parse_args()

    from rag.embedding import SentenceTransformerEmbedder

    embedders = {}
    for name in ENCODERS:
        t0 = time.perf_counter()
        embedders[name] = SentenceTransformerEmbedder(query_encoder=name)
        assert embedders[name].query_encoder == name
        print(f"construct {name}: {time.perf_counter() - t0:.2f} s"
              + (" (ONNX graph read from cache)" if name == "onnx" and not embedders[name]._fast.built
                 else ""))
    with tempfile.TemporaryDirectory() as tmp:
        from rag.onnx_minilm import OnnxMiniLM

        t0 = time.perf_counter()
        assert OnnxMiniLM(embedders["onnx"].path, cache_dir=tmp).built
        print(f"construct onnx with an empty cache (builds the graph): {time.perf_counter() - t0:.2f} s")

    qs = questions(args.queries)
    for q in qs[:20]:
        for e in embedders.values():
            e.embed_query(q + " warm-up")
    latencies: dict[str, list[float]] = {name: [] for name in ENCODERS}
    # Blocks in the order A B B A, so both see the same machine load; not query by query, which
    # would have each encoder evict the other's weights from the CPU caches.
    for name in ENCODERS + ENCODERS[::-1]:
        for q in qs:
            t0 = time.perf_counter()
            embedders[name].embed_query(q)
            latencies[name].append((time.perf_counter() - t0) * 1000)
    tokens = statistics.median(embedders["onnx"].count_tokens(q) for q in qs)
    print(f"\none caller, {len(qs)} distinct questions (median {tokens:g} word pieces) x 2 passes "
          f"(embed_query, ms):")
    for name, v in latencies.items():
        print(f"  {name:5}  median {statistics.median(v):6.2f}  p90 {percentile(v, 0.9):6.2f}")
    ratio = statistics.median(latencies["numpy"]) / statistics.median(latencies["onnx"])
    print(f"  numpy / onnx median: {ratio:.1f}x")

    print(f"\ntwo threads calling embed_query for {args.seconds:g} s each:")
    for name, e in embedders.items():
        qps, items, batches = two_threads(e, qs, args.seconds)
        print(f"  {name:5}  {qps:6.0f} queries/s  ({items} queries in {batches} forward passes)")

    print(f"\ncold one-shot `rag ask \"{QUESTION}\"` (fresh process, default index), {args.runs} runs each:")
    cold: dict[str, list[float]] = {name: [] for name in ENCODERS}
    cold_ask("onnx")  # the index and the ONNX cache exist before timing
    for _ in range(args.runs):
        for name in ENCODERS:
            cold[name].append(cold_ask(name))
    for name, v in cold.items():
        print(f"  {name:5}  median {statistics.median(v):.2f} s  ({', '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
