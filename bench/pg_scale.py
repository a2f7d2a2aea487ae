"""The PostgreSQL store at catalog scale: what it holds per 1,000 episodes, and how fast it answers.

    python bench/pg_scale.py [--show practicalai|all] [--queries 100]

Starts a throwaway PostgreSQL 16 + pgvector on 127.0.0.1, writes one show of the catalog into
it with `rag index` (every episode of ``--show``, default Practical AI's ~300), then prints:

1. the write: seconds, episodes a second (embeddings come from the cache when present);
2. rows and bytes per table (with its indexes), the HNSW graph's size, each per 1,000 episodes;
3. start: ``Assistant.load`` (seconds);
4. warm search and extractive ask latency (median, p90) over bench/catalog.py's questions, and
   where a search's time goes (the SQL of each kind, and the rest);
5. the graph's recall: the HNSW candidates (``ANN_CANDIDATES``) against an exact scan, recall@10.

These are the figures docs/scaling.md is built from.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from catalog import QUESTIONS, percentile  # noqa: E402


def main(argv=None) -> int:
    from rag.config import catalog_path
    from rag.stores.localpg import LocalPostgres

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--show", default="practicalai",
                    help="the catalog folder to write (default practicalai), or all: the whole archive")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--data", type=Path, help="the folder of an earlier run's database (its pg/): "
                    "measure that again without writing")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-scale-"))
    name = "catalog" if args.show == "all" else args.show
    if args.data:
        folder = None
    elif args.show == "all":  # the whole archive, read member by member
        folder = catalog_path()
    else:
        folder = tmp / args.show
        folder.mkdir()
        with tarfile.open(catalog_path()) as tar:
            for m in tar:
                if f"/{args.show}/" in m.name and m.name.endswith(".md"):
                    (folder / Path(m.name).name).write_bytes(tar.extractfile(m).read())
    pg = LocalPostgres(args.data or tmp / "pg").start()
    os.environ["RAG_DATABASE_URL"] = pg.url
    try:
        t0 = time.monotonic()
        if folder is not None:
            subprocess.run([sys.executable, "-m", "rag.cli", "index", str(folder), "--name", name], cwd=ROOT, check=True)
        write_s = time.monotonic() - t0

        from rag.api import Assistant
        from rag.config import Config
        from rag.stores.postgres import database

        status = database(Config.from_env()).status()
        (ix,) = [i for i in status["indexes"] if i["name"] == name]
        episodes = ix["episodes"]
        per = 1000 / episodes
        if folder is None:
            print(f"1. {episodes} episodes, {ix['passages']} passages, {ix['windows']} windows (written earlier)")
        else:
            print(f"1. wrote {episodes} episodes, {ix['passages']} passages, {ix['windows']} windows in "
                  f"{write_s:.0f} s ({episodes / write_s:.1f} episodes/s)")
        import psycopg

        with psycopg.connect(pg.url) as conn:
            rows = dict(conn.execute(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables").fetchall())
            conn.execute("ANALYZE")
            rows = {r: conn.execute(f"SELECT count(*) FROM {r}").fetchone()[0]
                    for r in ("episodes", "passages", "postings", "episode_terms", "words")}
        print(f"2. per 1,000 episodes (measured on {episodes}):")
        for table, count in rows.items():
            size = status["tables_bytes"].get(table, 0)
            print(f"  {table:14} {count * per:12,.0f} rows   {size * per / 2**20:9.1f} MB (with its indexes)")
        total = sum(status["tables_bytes"].values())
        hnsw = sum(status["hnsw_bytes"].values())
        print(f"  all tables     {total * per / 2**20:31.1f} MB; the HNSW graph {hnsw * per / 2**20:.1f} MB of it")

        t0 = time.perf_counter()
        assistant = Assistant.load(name, backend="extractive")
        import resource

        print(f"3. start: Assistant.load {time.perf_counter() - t0:.2f} s; this process's peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
        qs = (QUESTIONS * (args.queries // len(QUESTIONS) + 1))[:args.queries]
        assistant.search(qs[0])
        for op in ("search", "ask"):
            times = []
            for q in qs:
                t0 = time.perf_counter()
                assistant.search(q) if op == "search" else assistant.ask(q)
                times.append((time.perf_counter() - t0) * 1000)
            print(f"4. warm {op:6}: p50 {statistics.median(times):6.1f} ms   p90 {percentile(times, 0.9):6.1f} ms")

        # Where a search's time goes: the SQL of each kind over the same questions, warm.
        from rag.stores import postgres

        spent: dict[str, float] = {}
        query = postgres.PgIndex.query

        def timed(self, sql, params=None):
            t0 = time.perf_counter()
            try:
                return query(self, sql, params)
            finally:
                key = " ".join(sql.split())[:70]
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t0

        postgres.PgIndex.query = timed
        t0 = time.perf_counter()
        for q in qs:
            assistant.search(q)
        whole = (time.perf_counter() - t0) / len(qs) * 1000
        postgres.PgIndex.query = query
        print(f"   where a search's {whole:.1f} ms go (per question):")
        for key, seconds in sorted(spent.items(), key=lambda kv: -kv[1]):
            print(f"   {seconds / len(qs) * 1000:7.1f} ms  {key}")
        print(f"   {whole - sum(spent.values()) / len(qs) * 1000:7.1f} ms  the rest (the question's vector, fusion, MMR)")

        from rag.stores.files import ANN_CANDIDATES

        index = assistant.index
        embedder = assistant.retriever.embedder
        recalls = []
        for q in QUESTIONS:
            v = embedder.embed_query(q)
            with index.reading():
                graph = index.nearest(v, ANN_CANDIDATES)
                exact = index.nearest(v, 10, allowed=_all_but_one(len(index.ids)))
            recalls.append(len(set(graph.tolist()) & set(exact.tolist())) / max(len(exact), 1))
        print(f"5. HNSW (m 16, ef_construction 64, ef_search 400): recall@10 of the {ANN_CANDIDATES} "
              f"candidates {statistics.mean(recalls):.3f} over {len(QUESTIONS)} questions")
    finally:
        pg.stop()
    return 0


def _all_but_one(n: int):
    """A filter that admits every passage but is not "all": the store then scans exactly."""
    import numpy as np

    allowed = np.ones(n, dtype=bool)
    allowed[-1] = False
    return allowed


if __name__ == "__main__":
    sys.exit(main())
