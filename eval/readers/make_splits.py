#!/usr/bin/env python3
"""Write eval/readers/splits.json: which archive episodes the listeners' corpus covers, by split.

    python eval/readers/make_splits.py [--catalog ARCHIVE_OR_FOLDER]

Deterministic (episodes ordered by a hash of their id), so it reproduces the committed file.
- Excluded: every episode another question set uses (``excluded_episodes()``: the one list).
- held_out_shows: two whole shows, test only; nothing from them is trained on.
- test and validation: drawn only from episodes the shipped adapter never trained on
  (``rag.training.data.split_of(...) == "validation"``), so every model is compared fairly on them.
- train: the rest, drawn from the adapter's training episodes, with the 8 seed episodes.
- order: the order to write them in, interleaving the splits so that a corpus stopped part-way
  still has all of them.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rag.config import catalog_path  # noqa: E402
from rag.evaluation.readers import excluded_episodes, transcripts  # noqa: E402
from rag.catalog.shows import show_of  # noqa: E402
from rag.training.data import split_of  # noqa: E402

HELD_OUT_SHOWS = ("away-from-keyboard", "request-for-commits")
SEED = ("brain-science-20", "changelog--friends-24", "go-time-250", "js-party-300", "practical-ai-150",
        "practical-ai-210", "ship-it-60", "the-changelog-550")
MIN_WORDS, MAX_WORDS = 3000, 15000       # an interview a writer reads whole; news digests are shorter
TEST_SHARE, VALIDATION_SHARE = 0.4, 0.22  # of each show's never-trained-on episodes
TRAIN_PER_SHOW = {"practical-ai": 40, "js-party": 35, "go-time": 35, "the-changelog": 35,
                  "ship-it": 15, "brain-science": 8, "founders-talk": 8, "changelog--friends": 6,
                  "backstage": 6, "spotlight": 6}
HELD_OUT_PER_SHOW = 9


def _h(episode: str) -> str:
    return hashlib.sha256(("readers:" + episode).encode()).hexdigest()


def prefix(episode: str) -> str:
    return episode.rsplit("-", 1)[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", type=Path, default=None)
    args = ap.parse_args()
    excluded = excluded_episodes()
    eligible = defaultdict(list)
    everything = set()
    for episode, text in transcripts(None, args.catalog or catalog_path()):
        everything.add(episode)
        if episode in excluded or show_of(episode) is None:
            continue
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS or episode in SEED:
            eligible[prefix(episode)].append(episode)
    plan = {"held_out_shows": [], "test": [], "validation": [], "train": []}
    for show, eps in sorted(eligible.items()):
        eps.sort(key=_h)
        if show in HELD_OUT_SHOWS:
            plan["held_out_shows"] += eps[:HELD_OUT_PER_SHOW]
            continue
        never = [e for e in eps if split_of(e) == "validation" and e not in SEED]
        n_test = round(TEST_SHARE * len(never) + 0.49)
        n_val = round(VALIDATION_SHARE * len(never) + 0.49)
        plan["test"] += never[:n_test]
        plan["validation"] += never[n_test:n_test + n_val]
        trained = [e for e in eps if split_of(e) == "train" or e in SEED]
        seed = [e for e in trained if e in SEED]
        plan["train"] += seed + [e for e in trained if e not in SEED][:TRAIN_PER_SHOW.get(show, 0) - len(seed)]
    for k in plan:
        plan[k].sort(key=_h)
    # The writing order: seed episodes first (they are nearly written), then the splits interleaved.
    queues = {k: list(v) for k, v in plan.items()}
    order = [e for e in queues["train"] if e in SEED]
    queues["train"] = [e for e in queues["train"] if e not in SEED]
    weights = {"test": 3, "held_out_shows": 1, "validation": 2, "train": 4}
    while any(queues.values()):
        for k, w in weights.items():
            for _ in range(w):
                if queues[k]:
                    order.append(queues[k].pop(0))
    out = {
        "note": "Listeners' corpus splits, by episode (eval/readers/make_splits.py writes this file). "
                "Tune on validation; report on test and held_out_shows; train on train only. "
                "test and validation are episodes the shipped adapter never trained on.",
        "held_out_show_prefixes": list(HELD_OUT_SHOWS),
        "excluded": sorted(excluded & everything | excluded),
        **{k: sorted(v) for k, v in plan.items()},
        "order": order,
    }
    path = ROOT / "eval" / "readers" / "splits.json"
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"{path}: " + ", ".join(f"{k} {len(v)}" for k, v in plan.items()))


if __name__ == "__main__":
    main()
