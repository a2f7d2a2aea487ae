"""Gold matching and metrics. Pure functions over plain values (lists, dicts), no model needed.

Gold matching (documented in the report too): both sides go through ``eval/validate.py``'s
``normalise`` (speaker labels, ``[..]`` markers and markup removed; quotes, dashes and ellipses
unified; whitespace collapsed; lower case). A passage *holds* a quote when

1. the normalised quote is a substring of the normalised passage text (speaker labels dropped), or
2. fallback for quotes cut at a chunk boundary: a contiguous run of at least 80% of the quote's
   normalised words (in order) occurs in the passage at word boundaries.

Retrieval metrics use each passage's set of held quotes: a ranked list "hits" at depth k when the
union of its first k passages holds any quote (all quotes for ``needs_all`` items).
"""

from __future__ import annotations

import importlib.util
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
VALIDATE = REPO_ROOT / "eval" / "validate.py"
KS = (1, 3, 5, 10)
BUDGETS = (300, 600, 1200)
FALLBACK_FRACTION = 0.8


@lru_cache(maxsize=1)
def _validate_module():
    if not VALIDATE.is_file():
        return None
    spec = importlib.util.spec_from_file_location("rag_eval_validate", VALIDATE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def normalise(text: str) -> str:
    mod = _validate_module()
    if mod is not None:
        return mod.normalise(text)
    return " ".join(text.split()).lower()  # pragma: no cover - only outside a source checkout


def load_items(path) -> list[dict]:
    import json

    items = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                if not (isinstance(obj, dict) and "meta" in obj):
                    items.append(obj)
    return items


def holds(passage_text: str, quote: str, fraction: float = FALLBACK_FRACTION) -> bool:
    """True when the passage (plain text, no speaker labels) holds the quote (see module doc)."""
    p, q = normalise(passage_text), normalise(quote)
    if not q:
        return False
    if q in p:
        return True
    words = q.split()
    need = max(1, math.ceil(fraction * len(words)))
    padded = f" {p} "
    for size in range(len(words) - 1, need - 1, -1):
        for start in range(0, len(words) - size + 1):
            if f" {' '.join(words[start:start + size])} " in padded:
                return True
    return False


def held_quotes(passage_text: str, quotes: Sequence[str]) -> list[int]:
    return [i for i, q in enumerate(quotes) if holds(passage_text, q)]


def covered(held: Sequence[Iterable[int]], n_quotes: int, needs_all: bool) -> bool:
    """Do these passages (each a collection of held quote indexes) support the answer?"""
    union = set().union(*[set(h) for h in held]) if held else set()
    if n_quotes == 0:
        return False
    return len(union) == n_quotes if needs_all else bool(union)


def first_hit_rank(held: Sequence[Iterable[int]], n_quotes: int, needs_all: bool,
                   depth: int = 10) -> int | None:
    """1-based smallest k at which the top-k passages are ``covered``; None if not within depth."""
    for k in range(1, min(depth, len(held)) + 1):
        if covered(held[:k], n_quotes, needs_all):
            return k
    return None


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None, depth: int = 10) -> float:
    return 1.0 / rank if rank is not None and rank <= depth else 0.0


def budget_hit(held: Sequence[Iterable[int]], words: Sequence[int], budget: int, n_quotes: int,
               needs_all: bool) -> float:
    """Walk the ranking, keeping passages while the running word total fits ``budget``; stop at the
    first that does not fit. 1.0 when the kept passages are ``covered``."""
    kept, total = [], 0
    for h, w in zip(held, words):
        if total + w > budget:
            break
        total += w
        kept.append(h)
    return 1.0 if covered(kept, n_quotes, needs_all) else 0.0


def retrieval_metrics(held: Sequence[Iterable[int]], words: Sequence[int], n_quotes: int,
                      needs_all: bool) -> dict:
    rank = first_hit_rank(held, n_quotes, needs_all, depth=10)
    out = {"rank": rank, "mrr": reciprocal_rank(rank)}
    for k in KS:
        out[f"hit@{k}"] = hit_at(rank, k)
    for b in BUDGETS:
        out[f"budget@{b}"] = budget_hit(held, words, b, n_quotes, needs_all)
    return out


def percentile(values: Sequence[float], q: float) -> float | None:
    vals = sorted(values)
    if not vals:
        return None
    pos = (len(vals) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


def interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The 95% Wilson score interval of a share, ``hits`` of ``n``: where the share measured on other
    questions of the same kind would fall. It stays inside [0, 1] and is honest for small ``n``
    (a set's 40 second turns: 0.50 is 0.35-0.65). None for no questions."""
    if n <= 0:
        return None
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def share(values: Iterable[float | bool | None]) -> dict | None:
    """The share of true values among 0/1 ones (None skipped), their number and its ``interval``."""
    vals = [bool(v) for v in values if v is not None]
    if not vals:
        return None
    low, high = interval(sum(vals), len(vals))
    return {"share": sum(vals) / len(vals), "n": len(vals), "low": low, "high": high}


def sign_test(only_a: int, only_b: int) -> float:
    """Two-sided exact sign test of two systems on the same questions: ``only_a`` questions one gets
    and the other does not, ``only_b`` the reverse. The chance of a split at least this uneven if
    either were as likely (1.0 when they never differ)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def refusal_stats(rows: Sequence[tuple[bool, bool]]) -> dict:
    """rows: (answerable, refused). Precision/recall of refusing, on unanswerable as positives."""
    tp = sum(1 for a, r in rows if r and not a)
    fp = sum(1 for a, r in rows if r and a)
    pos = sum(1 for a, _ in rows if not a)
    neg = sum(1 for a, _ in rows if a)
    return {
        "refusal_precision": tp / (tp + fp) if tp + fp else None,
        "refusal_recall": tp / pos if pos else None,
        "false_refusal_rate": fp / neg if neg else None,
        "refused": tp + fp, "unanswerable": pos, "answerable": neg,
    }


def threshold_table(rows: Sequence[tuple[bool, float]], thresholds: Sequence[float]) -> list[dict]:
    """rows: (answerable, confidence). Refuse when confidence < threshold."""
    out = []
    for t in thresholds:
        s = refusal_stats([(a, c < t) for a, c in rows])
        out.append({"threshold": round(t, 4), **s})
    return out


def calibrate(items_results: Sequence[dict], max_false_refusals: float = 0.10) -> float | None:
    """The threshold maximising refusal recall subject to false refusal rate <= the cap.

    ``items_results``: dicts with ``answerable`` and ``confidence``. Candidates are midpoints
    between consecutive distinct confidences (and just below the lowest). Ties go to the lower
    false refusal rate, then to the lower threshold (fewer refusals).
    """
    rows = [(bool(r["answerable"]), float(r["confidence"])) for r in items_results
            if r.get("confidence") is not None]
    if not rows:
        return None
    confs = sorted({c for _, c in rows})
    candidates = [confs[0] - 1e-6] + [(a + b) / 2 for a, b in zip(confs, confs[1:])] + [confs[-1] + 1e-6]
    best, best_key = None, None
    for t in candidates:
        s = refusal_stats([(a, c < t) for a, c in rows])
        frr = s["false_refusal_rate"] or 0.0
        if frr > max_false_refusals:
            continue
        key = (s["refusal_recall"] or 0.0, -frr, -t)
        if best_key is None or key > best_key:
            best, best_key = t, key
    return round(best, 4) if best is not None else None


_CITE_SLACK = 5.0


def citation_valid(citation: dict, passages: dict[str, dict]) -> bool:
    """The cited passage was retrieved for this answer and the time lies within it (±5 s)."""
    p = passages.get(citation.get("passage_id"))
    if p is None:
        return False
    return p["start_s"] - _CITE_SLACK <= citation["start_s"] <= p["end_s"] + _CITE_SLACK


def words_of(text: str) -> int:
    return len(re.findall(r"\S+", text))
