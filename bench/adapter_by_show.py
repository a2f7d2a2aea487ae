"""Where the retrieval adapter helps: the plain model and an adapter, show by show.

    python bench/adapter_by_show.py [--splits validation,test,held_out_shows] [--adapter PATH]

Each answerable question of the listeners' corpus (eval/readers/) in the given splits is searched
by the model alone among its own episode's 200-word windows (``rag.training.readers.dense_benchmark``,
the benchmark `rag train --readers` prints), once with the plain all-MiniLM-L6-v2 and once with the
adapter merged (default: the shipped one). Prints hit@5 per show and split, and over each split.
Transcripts come from the catalog (RAG_CATALOG). Needs torch (the dev install).
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.config import SHIPPED_ADAPTER, catalog_path  # noqa: E402


def encoders(adapter: Path):
    import torch

    from rag.embedding import resolve_model_path
    from rag.training.lora import load_adapter, merge
    from rag.training.train import Encoder

    model_dir = resolve_model_path("all-MiniLM-L6-v2")
    plain, tuned = Encoder(model_dir), Encoder(model_dir)
    state = {k: v.cpu().numpy() for k, v in tuned.model.state_dict().items()}
    tuned.model.load_state_dict({k: torch.from_numpy(v) for k, v in merge(state, load_adapter(adapter)).items()})
    return plain.encode, tuned.encode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--splits", default="validation,test,held_out_shows")
    ap.add_argument("--adapter", type=Path, default=SHIPPED_ADAPTER,
                    help="an adapter.safetensors or the folder holding it (default: the shipped one)")
    args = ap.parse_args()
    adapter = args.adapter / "adapter.safetensors" if args.adapter.is_dir() else args.adapter
    if not adapter.is_file():
        ap.error(f"no adapter at {adapter}; give an adapter.safetensors or a folder `rag train --out` wrote")
    archive = catalog_path()
    if not archive.exists():
        ap.error(f"the catalog is not at {archive}; set RAG_CATALOG to the transcripts' .tar.gz")

    from rag.evaluation import readers as R
    from rag.training.readers import corpus_items, dense_benchmark

    plain, tuned = encoders(adapter)
    print(f"adapter: {adapter}\n")
    print("| split | show | episodes | questions | hit@5 plain | hit@5 adapter | change |")
    print("|---|---|---|---|---|---|---|")
    for split in args.splits.split(","):
        items = corpus_items([split])
        texts = dict(R.transcripts(items, archive))
        shows: dict[str, dict] = defaultdict(dict)
        for episode, its in items.items():
            shows[episode.rsplit("-", 1)[0]][episode] = its
        total = [0, 0.0, 0.0]
        for show, episodes in sorted(shows.items(), key=lambda kv: (-len(kv[1]), kv[0])):
            a, b = dense_benchmark(plain, episodes, texts), dense_benchmark(tuned, episodes, texts)
            n = a["questions"]
            total = [total[0] + n, total[1] + a["hit@5"] * n, total[2] + b["hit@5"] * n]
            print(f"| {split} | {show} | {len(episodes)} | {n} | {a['hit@5']:.3f} | {b['hit@5']:.3f} | "
                  f"{b['hit@5'] - a['hit@5']:+.3f} |", flush=True)
        n, a, b = total[0], total[1] / max(total[0], 1), total[2] / max(total[0], 1)
        print(f"| **{split}** | all | {len(items)} | {n} | {a:.3f} | {b:.3f} | {b - a:+.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
