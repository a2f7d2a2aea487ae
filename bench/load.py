"""Loopback load test of `rag serve` with the real default model and index.

    python bench/load.py                       # /search then /ask at 1, 2 and 4 clients, 10 s each
    python bench/load.py --concurrency 2 --duration 5 --endpoints search
    python bench/load.py --hanging-model 50    # /health, /search, extractive /ask while 50 asks hang
    python bench/load.py --index catalog --concurrency 2 --endpoints search   # a catalog index

With ``--hanging-model N`` the server's chat model is a loopback OpenAI-compatible server that
accepts requests and never answers (tests/openai_server.py): N clients keep model-bound ``/ask``
requests in flight (each ends at the answer deadline with the extractive fallback), while the
measured clients call ``/health``, ``/search`` and ``/ask`` with ``backend: extractive``. The
target (issue 9.5) is p99 <= 100 ms for those while the model hangs.

Starts `rag serve` as a subprocess on 127.0.0.1 (a free port; the default index is built on first
use, ~20 s), waits for /health, then drives each endpoint from a few client threads that each
keep one httpx connection alive. Bounded: at most --max-requests and --duration per endpoint, and
loopback only. Prints requests/s and latency percentiles per endpoint and client count, and a
verdict against the target: /search p50 <= 20 ms and >= 100 requests/s at the same client count.
(Throughput needs concurrency, latency grows with it: on 2 cores the sweet spot is 2 clients.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "How did Runway start?", "What did Anastasis study at NYU?", "What is Gen-2?",
    "How did they think about funding and customers?", "What advice does he give young artists?",
    "How does Runway see competition from big AI companies?", "What is a general world model?",
    "Why did he go to art school?", "What book do they give every employee?",
    "How do artists use Runway's tools?", "What was the drawing tool built on the Nvidia model?",
    "When does video generation get really good?",
]
TARGET_P50_MS, TARGET_RPS = 20.0, 100.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, timeout: float, model_url: str | None = None,
                 index: str | None = None, env: dict | None = None) -> subprocess.Popen:
    env = dict(os.environ if env is None else env)
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RAG_API_KEY"):
        env.pop(var, None)  # extractive answers, no auth: measure the server, not a chat model
    cmd = [sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--backend", "extractive" if model_url is None else "openai", *(["--index", index] if index else [])]
    if model_url is not None:
        env.update(OPENAI_BASE_URL=model_url, OPENAI_API_KEY="unused")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"rag serve exited with status {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"rag serve did not answer /health within {timeout:g}s")


def drive(url: str, path: str, body_of, *, concurrency: int, duration: float, max_requests: int):
    """Fire requests from ``concurrency`` threads; returns (latencies in s, errors, wall seconds)."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = [0]
    deadline = time.monotonic() + duration

    parts = urlsplit(url)

    def worker(n: int) -> None:
        # http.client, not httpx: the load generator shares the 2 cores with the server, and the
        # stdlib client costs a few percent of a core where httpx costs several times that.
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if issued[0] >= max_requests:
                        return
                    i = issued[0]
                    issued[0] += 1
                body = json.dumps(body_of(i))
                t0 = time.perf_counter()
                try:
                    conn.request("POST", path, body, {"content-type": "application/json"})
                    r = conn.getresponse()
                    json.loads(r.read())
                    problem = None if r.status == 200 else str(r.status)
                except (OSError, http.client.HTTPException, ValueError) as e:
                    problem = repr(e)
                    conn.close()  # reconnects on the next request
                dt = time.perf_counter() - t0
                with lock:
                    if problem is None:
                        latencies.append(dt)
                    else:
                        errors.append(problem)
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint (max 60)")
    ap.add_argument("--max-requests", type=int, default=2000, help="requests per endpoint (max 10000)")
    ap.add_argument("--concurrency", default="1,2,4",
                    help="client threads, or a comma-separated sweep (each at most 32)")
    ap.add_argument("--endpoints", default="search,ask")
    ap.add_argument("--url", help="an already running server instead of starting one (loopback only)")
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--index", help="serve this index instead of the shipped episode (e.g. a catalog)")
    ap.add_argument("--hanging-model", type=int, default=0, metavar="N",
                    help="N model-bound /ask clients against a chat model that never answers (max 100)")
    args = ap.parse_args(argv)
    if args.hanging_model:
        return hanging_model(min(args.hanging_model, 100), duration=min(args.duration, 60.0))
    duration, max_requests = min(args.duration, 60.0), min(args.max_requests, 10_000)
    try:
        levels = [max(1, min(int(c), 32)) for c in str(args.concurrency).split(",") if c.strip()]
    except ValueError:
        raise SystemExit("--concurrency takes numbers, e.g. 2 or 1,2,4") from None

    proc = None
    if args.url:
        if not args.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
            raise SystemExit("--url must be a loopback address")
        url = args.url.rstrip("/")
    else:
        port = free_port()
        print(f"starting rag serve on 127.0.0.1:{port} (builds the default index if needed)...",
              file=sys.stderr)
        t0 = time.monotonic()
        proc = start_server(port, timeout=300, index=args.index)
        url = f"http://127.0.0.1:{port}"
        print(f"ready in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    bodies = {
        "search": ("/search", lambda i: {"query": QUESTIONS[i % len(QUESTIONS)], "k": 5}),
        "ask": ("/ask", lambda i: {"question": QUESTIONS[i % len(QUESTIONS)]}),
    }
    results = {}
    try:
        health = httpx.get(url + "/health").json()
        print(f"server: index {health['index']!r}, {health['chunks']} chunks, {health['backend']}; "
              f"client threads {levels}, <= {duration:g}s / {max_requests} requests per run;"
              f" cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
        for name in [e.strip() for e in args.endpoints.split(",") if e.strip()]:
            path, body_of = bodies[name]
            drive(url, path, body_of, concurrency=1, duration=5, max_requests=len(QUESTIONS))  # warm
            for concurrency in levels:
                lat, errors, wall = drive(url, path, body_of, concurrency=concurrency,
                                          duration=duration, max_requests=max_requests)
                results[(path, concurrency)] = summarise(lat, errors, wall)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)

    print(f"\n{'endpoint':<9} {'clients':>7} {'requests':>8} {'errors':>6} {'req/s':>7} {'p50 ms':>7} "
          f"{'p90 ms':>7} {'p99 ms':>7}")
    for (path, clients), r in results.items():
        print(f"{path:<9} {clients:>7} {r['requests']:>8} {r['errors']:>6} {r['rps']:>7} "
              f"{r['p50_ms']:>7} {r['p90_ms']:>7} {r['p99_ms']:>7}")
    verdict = 0
    runs = [(c, r) for (path, c), r in results.items() if path == "/search"]
    if runs:
        met = [c for c, r in runs
               if r["p50_ms"] <= TARGET_P50_MS and r["rps"] >= TARGET_RPS and not r["errors"]]
        best = max(runs, key=lambda cr: cr[1]["rps"] if cr[1]["p50_ms"] <= TARGET_P50_MS else 0)
        print(f"\n/search target (p50 <= {TARGET_P50_MS:g} ms and >= {TARGET_RPS:g} req/s at one client "
              f"count, no errors): {'MET at ' + str(met) + ' clients' if met else 'MISSED'} "
              f"(best: {best[0]} clients, p50 {best[1]['p50_ms']} ms, {best[1]['rps']} req/s)")
        verdict = 0 if met else 1
    if args.json:
        Path(args.json).write_text(json.dumps({"url": url, "results": [
            {"endpoint": path, "clients": c, **r} for (path, c), r in results.items()]}, indent=2))
    return verdict


def hanging_model(stuck: int, duration: float) -> int:
    """Measure /health, /search and extractive /ask while ``stuck`` asks wait on a hanging model."""
    sys.path.insert(0, str(ROOT / "tests"))
    from openai_server import OpenAIServer, hang

    model = OpenAIServer(default=hang()).start()
    port = free_port()
    proc = start_server(port, timeout=300, model_url=model.url)
    url = f"http://127.0.0.1:{port}"
    stop = time.monotonic() + duration + 5
    finished: list[float] = []

    def stuck_client(n: int) -> None:  # model-bound asks, one after another, until the end
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            try:
                httpx.post(url + "/ask", json={"question": QUESTIONS[n % len(QUESTIONS)]}, timeout=120)
                finished.append(time.perf_counter() - t0)
            except httpx.HTTPError:
                pass

    results = {}
    try:
        threads = [threading.Thread(target=stuck_client, args=(n,), daemon=True) for n in range(stuck)]
        for t in threads:
            t.start()
        time.sleep(1.0)  # let them reach the model
        bodies = {"/health": None, "/search": lambda i: {"query": QUESTIONS[i % len(QUESTIONS)], "k": 5},
                  "/ask": lambda i: {"question": QUESTIONS[i % len(QUESTIONS)], "backend": "extractive"}}
        for path, body_of in bodies.items():
            if body_of is None:
                lat = []
                end = time.monotonic() + duration / 3
                while time.monotonic() < end:
                    t0 = time.perf_counter()
                    httpx.get(url + path, timeout=30)
                    lat.append(time.perf_counter() - t0)
                results[path] = summarise(lat, [], duration / 3)
            else:
                lat, errors, wall = drive(url, path, body_of, concurrency=1, duration=duration / 3,
                                          max_requests=2000)
                results[path] = summarise(lat, errors, wall)
    finally:
        proc.terminate()  # it waits for the stuck asks to reach their deadline: then kill it
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        model.stop()
    print(f"{stuck} model-bound /ask in flight against a model that never answers; "
          f"{len(finished)} of them ended (extractive fallback at the deadline) during the run")
    print(f"\n{'endpoint':<9} {'requests':>8} {'errors':>6} {'p50 ms':>7} {'p99 ms':>7}")
    for path, r in results.items():
        print(f"{path:<9} {r['requests']:>8} {r['errors']:>6} {r['p50_ms']:>7} {r['p99_ms']:>7}")
    met = all(r["p99_ms"] <= 100 and not r["errors"] for r in results.values())
    print(f"\ntarget (p99 <= 100 ms for each while the model hangs): {'MET' if met else 'MISSED'}")
    return 0 if met else 1


def summarise(lat: list[float], errors: list[str], wall: float) -> dict:
    result = {
        "requests": len(lat), "errors": len(errors), "seconds": round(wall, 2),
        "rps": round(len(lat) / wall, 1) if wall else 0.0,
        "p50_ms": round(pct(lat, 50) * 1e3, 1), "p90_ms": round(pct(lat, 90) * 1e3, 1),
        "p99_ms": round(pct(lat, 99) * 1e3, 1),
        "mean_ms": round(statistics.fmean(lat) * 1e3, 1) if lat else None,
    }
    if errors:
        result["error_sample"] = errors[:3]
    return result


if __name__ == "__main__":
    sys.exit(main())
