"""The passage graph of a catalog index against exact search: recall@10 and time, per setting.

    python bench/ann.py --index NAME [--questions 300] [--m 16 32]

The questions are host questions mined from the validation episodes (``rag eval --catalog``'s
set) plus bench/catalog.py's, embedded as search embeds them. For each ``efSearch`` the graph
returns ``ANN_CANDIDATES`` neighbours; "rescored" is what search does with them (exact
similarities from the stored vectors, then the top 10), "graph" the graph's own top 10 (8-bit
distances). Recall@10 is the share of the exact top 10 found. The stored graph is measured as
built; ``--m`` also builds graphs with other numbers of links from the stored vectors (minutes each).

Target (issue 11): recall@10 >= 0.98 against exact search.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def questions(assistant, limit: int) -> list[str]:
    from bench.catalog import QUESTIONS
    from rag.config import catalog_path
    from rag.evaluation.catalog import mined_questions

    episodes = {t["episode"]["id"] for t in assistant.index.transcripts}
    mined = mined_questions(catalog_path(), episodes, limit=limit) if catalog_path().exists() else []
    return QUESTIONS + [m["question"] for m in mined]


def measure(graph, vectors: np.ndarray, queries: np.ndarray, exact: np.ndarray, candidates: int,
            ef_values) -> list[tuple]:
    rows = []
    for ef in ef_values:
        graph.hnsw.efSearch = ef
        found_rescored, found_graph, times = [], [], []
        for q, want in zip(queries, exact):
            t = time.perf_counter()
            _, ids = graph.search(q[None, :], candidates)
            ids = ids[0][ids[0] >= 0]
            sims = vectors[ids] @ q
            top = ids[np.argsort(-sims)[:10]]
            times.append(1000 * (time.perf_counter() - t))
            found_rescored.append(len(set(top) & set(want)) / 10)
            found_graph.append(len(set(ids[:10]) & set(want)) / 10)
        rows.append((ef, float(np.mean(found_rescored)), float(np.mean(found_graph)), statistics.median(times)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", type=int, default=300, help="mined questions (plus 20 fixed ones)")
    ap.add_argument("--m", type=int, nargs="*", default=[], help="also build graphs with these links")
    ap.add_argument("--ef", type=int, nargs="*", default=[16, 32, 64, 128, 256, 512, 1024],
                    help="efSearch values to measure")
    ap.add_argument("--ef-construction", type=int, default=None,
                    help="efConstruction of the graphs --m builds (default: the stored graph's)")
    args = ap.parse_args()

    import faiss

    from rag.stores import files as store
    from rag.api import Assistant

    assistant = Assistant.load(args.index, backend="extractive")
    index = assistant.index
    if index.ann is None:
        sys.exit(f"index {args.index} has no graph: it has {len(index.chunks)} passages, fewer than "
                 f"ANN_MIN ({store.ANN_MIN})")
    vectors = np.asarray(index.chunk_vectors)
    qs = questions(assistant, args.questions)
    queries = np.vstack([assistant.retriever.embedder.embed_query(q) for q in qs]).astype(np.float32)
    t = time.perf_counter()
    exact = [np.argsort(-(vectors @ q))[:10] for q in queries]
    exact_ms = 1000 * (time.perf_counter() - t) / len(queries)
    print(f"index {args.index}: {len(vectors)} passages; {len(qs)} questions; exact scan "
          f"{exact_ms:.1f} ms a question (numpy, one thread)")
    ef_values = args.ef
    ef_construction = args.ef_construction or index.manifest["ann"]["ef_construction"]
    graphs = [(index.manifest["ann"]["m"], index.ann, None)]
    for m in args.m:
        t = time.perf_counter()
        graphs.append((m, store.ann_index(vectors, vectors.shape[1], m=m, ef_construction=ef_construction),
                       time.perf_counter() - t))
    print("| links (M) | efSearch | recall@10 rescored | recall@10 graph | search ms (p50) |")
    print("|---|---|---|---|---|")
    for m, graph, built in graphs:
        faiss.omp_set_num_threads(1)
        for ef, rescored, raw, ms in measure(graph, vectors, queries, exact, store.ANN_CANDIDATES, ef_values):
            mark = " (in use)" if m == store.HNSW_M and ef == store.HNSW_EF_SEARCH else ""
            print(f"| {m} | {ef}{mark} | {rescored:.3f} | {raw:.3f} | {ms:.2f} |")
        if built is not None:
            print(f"(M={m}, efConstruction {ef_construction}: built in {built:.0f} s)")


if __name__ == "__main__":
    main()
