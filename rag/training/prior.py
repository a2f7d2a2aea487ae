"""The question prior: how often a question like this one is covered, learnt from listeners' questions.

The refusal judges what the passages say: how well they match, whether the question's words are
used, whether a sentence holds the kind of answer asked for. A near miss ("Which VPN service did she
switch to?", "How much revenue does edX bring in?") matches its passages about as well as a covered
question does, and most of the listeners' uncovered questions were answered. What sets them apart is
their kind: interviews tell stories and give opinions, and seldom state a price, a version number, a
head count or a release date. A logistic regression on the question's vector alone (the adapter's
query encoder) tells the listeners' validation questions covered from uncovered at an AUC of about
0.94, and #260's hand-written dev and test questions at 0.94 and 0.85: the kind of question is
evidence, and the refusal did not read it.

Fitted here: the regression (L2, Newton's method) on the train split's single questions, answerable
and uncovered, written beside the adapter as ``prior.safetensors`` with the base rate it saw (the
log-odds of its share of covered questions). The refusal reads how far below that base rate a
question's log-odds fall (``QuestionPrior.distrust``): a question of a kind interviews seldom cover
needs stronger evidence, and none is answered for its kind alone. Then the refusal's weight on it,
its threshold kept: the largest weight whose false refusals stay within one standard error of the
policy's without it, on the validation split and on #260's dev questions (``answering.guard_rows``).
The policy is written to ``answering.json`` beside the adapter. Run by ``rag train --readers``
after the adapter, or alone::

    python -m rag.training.prior --model-dir rag/models/podcast-minilm
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from ..adapters import QUESTION_PRIOR_FILE, QUESTION_PRIOR_FORMAT, QuestionPrior
from ..answer.refusal import policy_for
from ..errors import InputError
from ..evaluation import readers as R
from .answering import ANSWERING_FILE, _first, guard_rows, main_beside, refusal_figures, rows_for, weighed
from .readers import corpus_items

L2 = 1.0          # on w (not b), against the summed log loss: C = 1, as scikit-learn counts it
FOLDS = 5         # the train split's cross-validated AUC, folds by episode
WEIGHTS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)   # the refusal's weight on the distrust, tried


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def questions(split: str, corpus: Path = R.CORPUS, limit: int | None = None) -> list[dict]:
    """The split's single questions (a conversation's turns lean on the turns before them): text,
    episode and whether the episode covers it. ``limit``: its first N episodes (a probe)."""
    items = corpus_items([split], corpus)
    return [{"question": it["question"], "episode": episode, "answerable": bool(it["answerable"])}
            for episode in _first(items, limit) for it in items[episode] if not it.get("turns")]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = L2, steps: int = 50) -> tuple[np.ndarray, float]:
    """(w, b) of an L2-regularised logistic regression of ``y`` on ``x``, by Newton's method."""
    n, dim = x.shape
    xb = np.hstack([x, np.ones((n, 1))]).astype(np.float64)
    theta = np.zeros(dim + 1)
    penalty = np.full(dim + 1, l2)
    penalty[-1] = 0.0                                   # the intercept is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ theta, -40, 40)))
        grad = xb.T @ (p - y) + penalty * theta
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(dim + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1].astype(np.float32), float(theta[-1])


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """The chance that a covered question scores above an uncovered one (ties count half)."""
    pos, neg = scores[y == 1], scores[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    ranks[order] = np.arange(1, len(order) + 1)
    for v in np.unique(values):                         # ties share their mean rank
        same = order[values == v]
        ranks[same] = ranks[same].mean()
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def cross_validated_auc(x: np.ndarray, y: np.ndarray, episodes: list[str], folds: int = FOLDS) -> float:
    """AUC of fits that never saw the episodes they score: folds by episode."""
    names = sorted(set(episodes))
    fold = {e: i % folds for i, e in enumerate(names)}
    which = np.array([fold[e] for e in episodes])
    scores = np.zeros(len(y))
    for k in range(folds):
        w, b = fit_logistic(x[which != k], y[which != k])
        scores[which == k] = x[which == k] @ w + b
    return auc(scores, y)


def write(prior: QuestionPrior, path: Path) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_suffix(".tmp")
    save_file({"w": prior.w.astype(np.float32), "b": np.array([prior.b, prior.base], np.float32)}, str(tmp),
              metadata={"rag": json.dumps({"format": QUESTION_PRIOR_FORMAT, **prior.meta})})
    tmp.replace(path)


def choose_weight(val: list[dict], guard: list[dict], base) -> tuple[object, dict]:
    """The policy ``base`` with the largest weight of ``WEIGHTS`` on the prior's distrust whose
    false refusals stay within one standard error of ``base``'s, on ``val`` and on ``guard``; the
    threshold is ``base``'s, so nothing ``base`` refuses is answered. Rows: {"answerable",
    "refusal"} with the distrust in "refusal"["prior"]."""
    def figures_of(policy, rows):
        return refusal_figures([{"answerable": r["answerable"], "confidence": weighed(policy, r["refusal"])}
                                for r in rows], policy.threshold)

    def allowed(before):   # one standard error more than before
        p = before["false_refusals"]
        return p + math.sqrt(max(p * (1 - p), 1e-12) / max(before["answerable"], 1))

    before = {"validation": figures_of(base, val), "guard (#260 dev)": figures_of(base, guard) if guard else None}
    tried, policy = [], base
    for weight in WEIGHTS:
        candidate = replace(base, prior_weight=weight)
        figures = {"validation": figures_of(candidate, val),
                   "guard (#260 dev)": figures_of(candidate, guard) if guard else None}
        tried.append({"prior_weight": weight, **figures})
        if all(figures[k] is None or figures[k]["false_refusals"] <= allowed(before[k]) + 1e-12 for k in figures):
            policy = candidate
    chosen = next(t for t in tried if t["prior_weight"] == policy.prior_weight)
    return policy, {"before": before, "tried": tried,
                    "chosen": {k: v for k, v in chosen.items() if k != "prior_weight"}}


def fit_beside(adapter: Path, archive: Path, work: Path, corpus: Path = R.CORPUS, limit: int | None = None) -> dict:
    """Fit the prior for ``adapter`` on the listeners' train split, write it beside the adapter,
    choose the refusal's weight on it (validation, #260's dev questions as a guard) and write
    that policy into ``answering.json``; return the recipe and the figures."""
    from ..embedding import make_embedder

    train, validation = questions("train", corpus, limit), questions("validation", corpus, limit)
    for name, rows in (("train", train), ("validation", validation)):
        if len({r["answerable"] for r in rows}) < 2:
            raise InputError(f"the {name} split needs answerable and uncovered single questions to fit the "
                             f"question prior; it has {len(rows)} questions, "
                             f"{sum(not r['answerable'] for r in rows)} uncovered: check {corpus}")
    embedder = make_embedder(adapter_path=adapter)
    _say(f"question prior: encoding {len(train) + len(validation)} questions")
    vector = {}
    for r in train + validation:
        if r["question"] not in vector:
            vector[r["question"]] = embedder.embed_query(r["question"]).astype(np.float32)
    x = np.stack([vector[r["question"]] for r in train])
    y = np.array([r["answerable"] for r in train], dtype=np.float64)
    xv = np.stack([vector[r["question"]] for r in validation])
    yv = np.array([r["answerable"] for r in validation], dtype=np.float64)
    cv = cross_validated_auc(x, y, [r["episode"] for r in train])
    w, b = fit_logistic(x, y)
    base_rate = float(np.log(y.sum() / (len(y) - y.sum())))
    recipe = {"model": "logistic regression on the question's vector", "l2": L2, "solver": "Newton",
              "trained_on": "listeners' corpus, train split (eval/readers/splits.json): single questions",
              "questions": len(train), "uncovered": int((y == 0).sum()),
              "episodes": len({r["episode"] for r in train})}
    separates = {"train, cross-validated by episode": round(cv, 4),
                 "validation": round(auc(xv @ w + b, yv), 4), "validation questions": len(validation)}
    prior = QuestionPrior(w=w, b=b, base=base_rate, meta={"recipe": recipe, "auc": separates,
                                          "licence": "trained on Changelog transcripts, CC BY-SA 4.0, "
                                                     "copyright Changelog Media"})
    write(prior, adapter.parent / QUESTION_PRIOR_FILE)
    _say(f"question prior: AUC {separates}; wrote {adapter.parent / QUESTION_PRIOR_FILE}")

    rows = rows_for(adapter, "validation", archive, work, limit, corpus)
    for r in rows:    # the distrust of the words the refusal judges (a single question's own)
        q = vector[r["question"]] if r["question"] in vector else embedder.embed_query(r["question"])
        r["refusal"] = {**r["refusal"], "prior": prior.distrust(q)}
    guard = guard_rows(adapter, work)   # read with the prior beside the adapter: "prior" is live
    target = adapter.parent / ANSWERING_FILE
    out = json.loads(target.read_text(encoding="utf-8")) if target.is_file() else {}
    base = policy_for(embedder.name)   # the policy rag reads this adapter with, without a prior
    policy, chosen = choose_weight(rows, guard, replace(base, prior_weight=0.0))
    out["policy"] = asdict(policy)
    out.setdefault("not_used", {})
    out.setdefault("figures", {})["prior"] = {"auc": separates, **chosen}
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(target)
    _say(f"refusal with the prior: weight {policy.prior_weight} (threshold {policy.threshold}); wrote {target}")
    return {"recipe": recipe, "auc": separates, "policy": asdict(policy), **chosen}


def main(argv=None) -> int:
    return main_beside(argv, "fit the question prior on the listeners' corpus, beside an adapter",
                       fit_beside,
                       lambda result: {k: result[k] for k in ("auc", "policy", "chosen")})


if __name__ == "__main__":
    raise SystemExit(main())
