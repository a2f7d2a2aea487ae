"""Base MiniLM, the tuned adapter, its reranker and the hybrid, side by side on every question set,
in one run.

    python bench/retrievers.py [--model-dir DIR] [--splits dev,test,84] [--out FILE]

For each embedding model (the plain packaged all-MiniLM-L6-v2, with the trained adapter, and with
the adapter and the reranker beside it when there is one) it builds the indexes in a temporary folder, then runs the evaluation on #260's dev and test splits and
on the held-out #84 set (its transcript comes from the catalog, RAG_CATALOG). Rows:

- ``dense``: 200-word windows, dense only (the generic pipeline), with that model;
- ``hybrid``: rag's retrieval (dense chunks + sentences + BM25, fused) and its extractive answers.

It prints one Markdown table (hit@5, hit within 1,200 words, MRR, quote support, refusal precision
and recall, false refusals, latency p50), and writes it to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.config import SHIPPED_ADAPTER, Config, catalog_path  # noqa: E402


def question_sets(names, tmp: Path):
    from rag.evaluation.metrics import load_items

    main = load_items(REPO / "eval" / "questions.jsonl")
    for name in names:
        if name in ("dev", "test"):
            yield name, None, [it for it in main if it["split"] == name]
        elif name == "84":
            with tarfile.open(catalog_path()) as tar:
                member = tar.getmember("changelog-transcripts/practicalai/practical-ai-84.md")
                path = tmp / "practical-ai-84.md"
                path.write_bytes(tar.extractfile(member).read())
            yield "#84", path, load_items(REPO / "eval" / "episodes" / "practical-ai-84" / "questions.jsonl")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model-dir", default=str(SHIPPED_ADAPTER.parent), help="the adapter to compare")
    ap.add_argument("--splits", default="dev,test,84")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    from rag.api import Assistant, build_index
    from rag.evaluation.baselines import build_baselines
    from rag.evaluation import runner

    adapter = Path(args.model_dir)
    adapter = adapter / "adapter.safetensors" if adapter.is_dir() else adapter
    reranker = adapter.parent / "reranker.safetensors"
    models = [("MiniLM", None, None), ("MiniLM + adapter", adapter, None)]
    if reranker.is_file():
        models.append(("MiniLM + adapter + reranker", adapter, reranker))
    rows = []
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        tmp = Path(tmp)
        sets = list(question_sets(args.splits.split(","), tmp))
        for label, adapter_path, reranker_path in models:
            # The reranker reads the adapter's index: the same folder, built once.
            config = Config(index_dir=tmp / f"idx-{adapter_path is not None}", adapter=adapter_path,
                            reranker=reranker_path)
            for set_name, source, items in sets:
                if source is not None:
                    build_index([source], name="practical-ai-84", config=config)
                t0 = time.monotonic()
                assistant = Assistant.load("practical-ai-84" if source else None, backend="extractive",
                                           config=config)
                dense = [b for b in build_baselines(assistant, assistant.retriever.embedder)
                         if b.name == "window200-dense"]
                results = runner.evaluate(assistant, items, k=5, backend="extractive", baselines=dense)
                g = runner.aggregate(results)["overall"]
                ref = g["refusal"]
                systems = (("dense", g["baselines"]["window200-dense"]),) if reranker_path is None else ()
                for system, r in systems + (("hybrid", g["retrieval"]),):
                    hybrid = system == "hybrid"
                    rows.append((set_name, f"{label}, {system}", r["hit@5"], r["budget@1200"], r["mrr"],
                                 g["quote_support"] if hybrid else None,
                                 ref.get("refusal_precision") if hybrid else None, ref.get("refusal_recall") if hybrid else None,
                                 ref.get("false_refusal_rate") if hybrid else None,
                                 g["latency_p50_s"] * 1000 if hybrid else None))
                print(f"{set_name:>5} {label}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    head = ("| set | retrieval | hit@5 | hit within 1,200 words | MRR | quote support | refusal P | "
            "refusal R | false refusals | answer p50 ms |\n|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else f"{v:.3f}" if v < 10 else f"{v:.0f}"  # noqa: E731
    lines = [head] + ["| " + " | ".join([s, sysname] + [fmt(v) for v in vals]) + " |"
                      for s, sysname, *vals in sorted(rows, key=lambda r: (r[0], r[1]))]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
