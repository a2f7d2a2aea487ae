"""The mined benchmark: each validation question searched among the answers of its own episode.

Candidates are every mined answer passage of the episode ("Speaker: text", as the index holds
them), so the negatives are the hard ones: the same people, the same topic, the same words.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Sequence

import numpy as np

from .data import Pair

Encode = Callable[[list[str]], np.ndarray]


def sample(pairs: Sequence[Pair], limit: int | None, seed: int = 0) -> list[Pair]:
    """Up to ``limit`` questions, whole episodes at a time (seeded), from episodes with >= 5 pairs
    (a search among fewer candidates says little; tiny corpora fall back to >= 2)."""
    by_ep: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_ep[p.episode].append(p)
    episodes = sorted(e for e, ps in by_ep.items() if len(ps) >= 5) or \
        sorted(e for e, ps in by_ep.items() if len(ps) >= 2)
    rng = np.random.default_rng(seed)
    rng.shuffle(episodes)
    out: list[Pair] = []
    for e in episodes:
        if limit is not None and len(out) >= limit:
            break
        out.extend(by_ep[e])
    return out


def vectors(encode: Encode, pairs: Sequence[Pair]) -> tuple[np.ndarray, np.ndarray]:
    """(question vectors, passage vectors) of ``pairs``."""
    return encode([p.question for p in pairs]), encode([p.passage() for p in pairs])


def evaluate(encode: Encode, pairs: Sequence[Pair]) -> dict:
    """hit@1, hit@5, MRR and the number of questions and episodes."""
    return score(pairs, *vectors(encode, pairs))


def score(pairs: Sequence[Pair], qv: np.ndarray, pv: np.ndarray) -> dict:
    by_ep: dict[str, list[Pair]] = defaultdict(list)
    for p in pairs:
        by_ep[p.episode].append(p)
    index_of = {id(p): i for i, p in enumerate(pairs)}
    ranks = []
    for ep, ps in by_ep.items():
        rows = [index_of[id(p)] for p in ps]
        sims = qv[rows] @ pv[rows].T
        for j in range(len(rows)):
            ranks.append(1 + int((sims[j] > sims[j, j]).sum()))
    r = np.array(ranks)
    return {"questions": len(r), "episodes": len(by_ep), "hit@1": float((r <= 1).mean()),
            "hit@5": float((r <= 5).mean()), "mrr": float((1.0 / r).mean()),
            "candidates_per_episode": float(np.mean([len(v) for v in by_ep.values()]))}
