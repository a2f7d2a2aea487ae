"""The answer head: a calibrated probability that the best passage found answers the question.

Fitted on the mined validation pairs with the tuned bi-encoder's own scores. Each validation
question is searched three times: among the answers of its own episode (the answer is there:
label 1), among those of another validation episode (it is not: label 0), and among its own
episode's answers without its own (label 0: the near miss, same people and topic but no answer,
which is what an on-topic question the interview does not cover looks like). The features are
the best similarity and its margin over the second best; a two-weight logistic regression turns them into a probability, and its
calibration (expected calibration error over ten bins) is reported with it.

The head is three numbers stored in the adapter's metadata; query time reads it with
``rag.adapters.head_probability``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # query time reads the head and imports nothing of the mining code
    from .data import Pair


def _features(sims: np.ndarray) -> tuple[float, float]:
    top = np.sort(sims)[::-1]
    second = float(top[1]) if len(top) > 1 else float(top[0])
    return float(top[0]), float(top[0]) - second


def fit(pairs: "Sequence[Pair]", qv: np.ndarray, pv: np.ndarray, seed: int = 0, steps: int = 3000,
        near_misses: bool = True) -> dict:
    """Fit the head from question vectors ``qv`` and passage vectors ``pv`` (rows of ``pairs``).

    ``near_misses``: also search each question among its own episode's answers without its own,
    which is what an on-topic question the interview does not answer looks like (the same people
    and topic, no answer), the hard case for a refusal."""
    by_ep: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_ep[p.episode].append(i)
    episodes = sorted(by_ep)
    rng = np.random.default_rng(seed)
    x, y = [], []
    for n, ep in enumerate(episodes):
        other = episodes[(n + 1 + int(rng.integers(len(episodes) - 1))) % len(episodes)] if len(episodes) > 1 else ep
        own, elsewhere = pv[by_ep[ep]], pv[by_ep[other]]
        for j, i in enumerate(by_ep[ep]):
            sims = own @ qv[i]
            x.append(_features(sims)), y.append(1.0)
            if other != ep:
                x.append(_features(elsewhere @ qv[i])), y.append(0.0)
            if near_misses and len(sims) > 2:
                x.append(_features(np.delete(sims, j))), y.append(0.0)
    X, Y = np.array(x), np.array(y)
    mean, std = X.mean(0), X.std(0) + 1e-9
    Z = (X - mean) / std
    w, b = np.zeros(2), 0.0
    for _ in range(steps):  # plain gradient descent on the log loss (a convex problem)
        p = 1 / (1 + np.exp(-(Z @ w + b)))
        w -= 0.5 * (Z.T @ (p - Y)) / len(Y)
        b -= 0.5 * float((p - Y).mean())
    weights = w / std  # back to raw similarities
    bias = b - float((w * mean / std).sum())
    p = 1 / (1 + np.exp(-(X @ weights + bias)))
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == k].mean() - Y[bins == k].mean()) * (bins == k).mean()
              for k in range(10) if (bins == k).any())
    accuracy = float(((p >= 0.5) == (Y == 1)).mean())
    return {"weights": [float(weights[0]), float(weights[1])], "bias": float(bias),
            "examples": int(len(Y)), "ece": float(ece), "accuracy": accuracy}
