"""Two `rag serve` replicas on one PostgreSQL: load, an episode added while serving, a database
restart mid-run, and pool exhaustion. Loopback only, bounded.

    python bench/pg_serve.py                    # every phase, 15 s of load each
    python bench/pg_serve.py --duration 10 --clients 4

It starts a throwaway PostgreSQL 16 + pgvector on 127.0.0.1 (``rag/stores/localpg.py``), writes
the shipped episode into it (``rag index`` with ``RAG_DATABASE_URL``), starts two `rag serve`
processes on it, and drives them from client threads (half on each replica, /search and
extractive /ask in turn). Phases:

1. load: requests/s, p50 and p99 per endpoint, errors (target: 0);
2. an episode added while serving (`rag index` of a catalog episode into the same index): no
   request fails, and every /episodes reply that lists the new episode shows all its passages;
3. the database stopped for a few seconds mid-run: requests fail fast with 503 (their p99), no
   other error, and each replica serves again by itself once it is back (the seconds it took);
4. pool exhaustion: a replica with RAG_DB_POOL=2 while another session holds a lock that blocks
   every read: the requests beyond the pool get a 503 within RAG_DB_TIMEOUT, none hangs.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import QUESTIONS, free_port, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
NEW_EPISODE = "practical-ai-84"  # held out of training; any catalog episode would do


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else float("nan")


class Clients:
    """Client threads, each with one keep-alive connection to one replica, until stopped."""

    def __init__(self, ports, clients: int):
        self.ports, self.clients = ports, clients
        self.records: list[tuple[float, str, int, float, str]] = []  # (start, path, status, seconds, body)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.worker, args=(n,), daemon=True) for n in range(clients)]

    def worker(self, n: int) -> None:
        port = self.ports[n % len(self.ports)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        i = n
        while not self.stop.is_set():
            path = "/search" if i % 2 == 0 else "/ask"
            body = {"query": QUESTIONS[i % len(QUESTIONS)]} if path == "/search" else \
                {"question": QUESTIONS[i % len(QUESTIONS)], "backend": "extractive"}
            t0 = time.perf_counter()
            start = time.monotonic()
            try:
                conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
                r = conn.getresponse()
                text = r.read().decode()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                status, text = -1, repr(e)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            with self.lock:
                self.records.append((start, path, status, time.perf_counter() - t0, text[:300]))
            i += self.clients

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(60)


def report(records, seconds: float, title: str) -> None:
    print(title)
    for path in ("/search", "/ask"):
        rows = [r for r in records if r[1] == path]
        ok = [r[3] * 1000 for r in rows if r[2] == 200]
        errors = len(rows) - len(ok)
        print(f"  {path:8} {len(ok) / seconds:6.1f} req/s   p50 {pct(ok, 0.5):6.1f} ms   "
              f"p99 {pct(ok, 0.99):6.1f} ms   errors {errors}")


def get(port: int, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def rag(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def main(argv=None) -> int:
    from rag.config import catalog_path
    from rag.stores.localpg import LocalPostgres

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per phase")
    parser.add_argument("--clients", type=int, default=4, help="client threads (half on each replica)")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="rag-pg-bench-"))
    pg = LocalPostgres(tmp / "pg").start()
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAG_API_KEY")}
    env["RAG_DATABASE_URL"] = pg.url
    servers = []
    failures = []
    try:
        t0 = time.monotonic()
        rag("index", env=env)  # the shipped episode, into the database
        print(f"wrote the shipped episode into {pg.url} in {time.monotonic() - t0:.1f} s")
        ports = [free_port(), free_port()]
        servers = [start_server(p, 120, env=env) for p in ports]

        # 1. load
        with Clients(ports, args.clients) as c:
            time.sleep(args.duration)
        report(c.records, args.duration, f"1. load: 2 replicas, {args.clients} clients, {args.duration:g} s")
        if any(r[2] != 200 for r in c.records):
            failures.append("errors under load")

        # 2. an episode added while serving
        with tarfile.open(catalog_path()) as tar:
            member = next(m for m in tar if m.name.endswith(f"/{NEW_EPISODE}.md"))
            new = tmp / f"{NEW_EPISODE}.md"
            new.write_bytes(tar.extractfile(member).read())
        seen: list[tuple[int, float, int]] = []  # (replica, time, passages listed for the new episode)
        polling = threading.Event()

        def poll():
            while not polling.is_set():
                for n, port in enumerate(ports):
                    status, body = get(port, "/episodes")
                    if status != 200:
                        seen.append((n, time.monotonic(), -status))
                        continue
                    for e in body["episodes"]:
                        if e["id"] == NEW_EPISODE:
                            seen.append((n, time.monotonic(), e["passages"]))
                time.sleep(0.05)

        poller = threading.Thread(target=poll, daemon=True)
        with Clients(ports, args.clients) as c:
            poller.start()
            time.sleep(1)
            t_write = time.monotonic()
            rag("index", str(new), "--name", "practical-ai-260", env=env)
            t_done = time.monotonic()
            time.sleep(max(3.0, args.duration - (t_done - t_write) - 1))
            polling.set()
            poller.join(10)
        status, body = get(ports[0], "/episodes")
        full = next(e["passages"] for e in body["episodes"] if e["id"] == NEW_EPISODE)
        partial = [s for s in seen if s[2] != full]
        first = [min((t for n, t, _ in seen if n == r), default=float("nan")) - t_done for r in (0, 1)]
        errors = sum(r[2] != 200 for r in c.records)
        print(f"2. {NEW_EPISODE} added while serving ({full} passages, written in {t_done - t_write:.1f} s):")
        print(f"  requests {len(c.records)}, errors {errors}; /episodes replies listing it {len(seen)}, "
              f"with fewer passages than it has {len(partial)}")
        print(f"  listed by the replicas {first[0]:.2f} s and {first[1]:.2f} s after the write returned")
        if errors or partial or len({n for n, _, _ in seen}) < 2:
            failures.append("adding an episode while serving")

        # 3. the database restarted mid-run
        with Clients(ports, args.clients) as c:
            time.sleep(2)
            t_stop = time.monotonic()
            pg.stop()
            time.sleep(4)
            t_start = time.monotonic()
            pg.start()
            time.sleep(max(4.0, args.duration - 6))
        down = [r for r in c.records if t_stop <= r[0] < t_start]
        after = [r for r in c.records if r[0] >= t_start]
        unavailable = [r for r in c.records if r[2] == 503]
        other = [r for r in c.records if r[2] not in (200, 503)]
        print(f"3. the database stopped for {t_start - t_stop:.1f} s:")
        print(f"  requests while down {len(down)}: 503 {sum(r[2] == 503 for r in down)}, "
              f"p99 of the 503s {pct([r[3] * 1000 for r in unavailable], 0.99):.0f} ms; other errors {len(other)}")
        if unavailable:
            print(f"  e.g. {json.loads(unavailable[0][4])['error']['message'][:160]}")
        served = [r[0] + r[3] for r in after if r[2] == 200]
        again = (min(served) - t_start) if served else float("nan")
        print(f"  serving again {again:.2f} s after the database was back; requests failing a second "
              f"after that: {sum(r[2] != 200 for r in after if r[0] > t_start + again + 1)}")
        if other or not unavailable or not served:
            failures.append("database restart")

        # 4. pool exhaustion
        import psycopg

        small_port = free_port()
        servers.append(start_server(small_port, 120, env={**env, "RAG_DB_POOL": "2", "RAG_DB_TIMEOUT": "0.5"}))
        with psycopg.connect(pg.url) as blocker:
            blocker.execute("BEGIN")
            blocker.execute("LOCK TABLE passages IN ACCESS EXCLUSIVE MODE")
            with Clients([small_port], 6) as c:
                time.sleep(3)
                blocker.execute("ROLLBACK")
                time.sleep(2)
        busy = [r for r in c.records if r[2] == 503]
        other = [r for r in c.records if r[2] not in (200, 503)]
        print("4. a replica with RAG_DB_POOL=2, RAG_DB_TIMEOUT=0.5 while a lock blocks every read for 3 s, 6 clients:")
        print(f"  503 {len(busy)} (median {pct([r[3] * 1000 for r in busy], 0.5):.0f} ms, max "
              f"{max((r[3] for r in busy), default=0) * 1000:.0f} ms), other errors {len(other)}, "
              f"slowest request {max(r[3] for r in c.records):.1f} s, served after the lock "
              f"{sum(r[2] == 200 for r in c.records)}")
        if busy:
            print(f"  e.g. {json.loads(busy[0][4])['error']['message'][:160]}")
        if other or not busy:
            failures.append("pool exhaustion")
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            s.wait(10)
        pg.stop()
    print("verdict:", "PASS" if not failures else "FAIL: " + ", ".join(failures))
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
