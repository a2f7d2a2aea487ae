"""The PostgreSQL store against the file store on the shipped episode: the same top 10, the same hit@5?

    python bench/pg_parity.py [--split dev]

Writes the shipped episode into a throwaway PostgreSQL on 127.0.0.1, then asks every question of
the split through both stores (the real model, extractive answers) and prints how many top-10s
agree (ids in order) and the evaluation of each (`rag eval`'s metrics). Targets (issue 12): the
same top 10 for >= 95% of the questions, hit@5 within 0.02.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    from rag.api import Assistant
    from rag.config import Config
    from rag.evaluation.cli import run_eval, select
    from rag.evaluation.metrics import load_items
    from rag.stores.localpg import LocalPostgres

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="dev")
    args = ap.parse_args(argv)
    items = select(load_items(ROOT / "eval" / "questions.jsonl"), args.split)
    with LocalPostgres(Path(tempfile.mkdtemp(prefix="rag-pg-parity-")) / "pg") as pg:
        files = Assistant.load(backend="extractive")
        db = Assistant.load(config=dataclasses.replace(Config.from_env(), database_url=pg.url), backend="extractive")
        asked = [i for i in items if i.get("question")]
        same = sum([h.chunk.id for h in db.search(i["question"], k=10)] ==
                   [h.chunk.id for h in files.search(i["question"], k=10)] for i in asked)
        print(f"{args.split}: the same top 10 (in order) for {same} of {len(asked)} questions "
              f"({same / len(asked):.1%}; target >= 95%)")
        rows = {}
        for name, assistant in (("files", files), ("postgres", db)):
            agg = run_eval(assistant, items, split=args.split)["aggregate"]["overall"]
            rows[name] = r = agg["retrieval"]
            print(f"  {name:9} hit@5 {r['hit@5']:.3f}   MRR {r['mrr']:.3f}   "
                  f"quote support {agg.get('quote_support') or 0:.3f}")
        gap = abs(rows["files"]["hit@5"] - rows["postgres"]["hit@5"])
        print(f"hit@5 difference {gap:.3f} (target <= 0.02)")
        return 0 if same / len(asked) >= 0.95 and gap <= 0.02 else 1


if __name__ == "__main__":
    sys.exit(main())
