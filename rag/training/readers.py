"""Training pairs and a quick benchmark from the listeners' corpus (``eval/readers/``).

A listener's question and the paragraph its gold quote lies in make a pair; the batch's other
passages (from the same episode, ``Recipe.episodes`` episodes at a time) and, with
``neighbour_negatives``, another paragraph of the same episode are its negatives. A multi-passage
question gives a pair per quote, a conversation its first turn. Only the episodes of the splits asked
for are read, so validation and test episodes never reach training.

``dense_benchmark`` is the probe's measure, quick enough to compare recipes: every question searched
among its own episode's 200-word windows, hit@5 and MRR by whether a window holds a gold quote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from ..evaluation import readers as R
from .data import Pair

PASSAGE_WORDS = 120      # the window around a quote that stands for its passage (the model reads 128 pieces)
WINDOW_WORDS, WINDOW_STRIDE = 200, 100


def corpus_items(splits: Iterable[str], corpus: Path = R.CORPUS) -> dict[str, list[dict]]:
    """{episode: items} for every corpus file whose episode is in one of ``splits``. A folder
    without a ``splits.json`` (questions written for your own transcripts) is split by episode:
    one in ten to validation, by a hash of its id."""
    import hashlib

    files = R.corpus_files(corpus)
    if (corpus / "splits.json").is_file():
        plan = R.splits(corpus)
        wanted = {e for s in splits for e in plan.get(s, ())}
    else:
        def split(e: str) -> str:
            return "validation" if int(hashlib.sha256(e.encode()).hexdigest()[:8], 16) % 10 == 0 else "train"
        wanted = {f.stem for f in files if split(f.stem) in splits}
    return {f.stem: R.load(f) for f in files if f.stem in wanted}


def questions_of(items: Sequence[dict]) -> list[tuple[str, list[str], bool]]:
    """(question, gold quotes, needs_all) of every answerable question, two-turn conversations' first
    turns included (the three-turn ones came after the shipped adapter: left out, as
    ``as_eval_items`` leaves them, so that its recipe reads what it was trained on)."""
    out = []
    for it in items:
        if it.get("turns"):
            if len(it["turns"]) > 2:
                continue
            first = it["turns"][0]
            out.append((first["question"], list(first.get("gold_quotes") or ()), False))
        elif it.get("answerable"):
            out.append((it["question"], list(it["gold_quotes"]), bool(it.get("needs_all"))))
    return out


def _window(para: R.Para, quote: str, limit: int = PASSAGE_WORDS) -> str:
    """Up to ``limit`` words of the paragraph, placed so that they hold the quote."""
    words = para.text.split()
    if len(words) <= limit:
        return para.text
    at = len(para.text[:para.text.find(R.normalise(quote))].split())
    start = max(0, min(at - limit // 3, len(words) - limit))
    return " ".join(words[start:start + limit])


def pairs_for_episode(episode: str, items: Sequence[dict], transcript_text: str,
                      show: str = "") -> list[Pair]:
    t = R.parse_transcript(transcript_text)
    rng = np.random.default_rng(int.from_bytes(episode.encode()[:8].ljust(8, b"\0"), "little"))
    pairs = []
    for n, (question, quotes, _) in enumerate(questions_of(items)):
        for quote in quotes:
            found = t.find(quote)
            if len(found) != 1:
                continue                  # the validator refuses such a file; be safe anyway
            para = found[0][0]
            apart = [p for p in t.paragraphs if abs(p.index - para.index) > 1]
            others = [p for p in apart if len(p.text.split()) >= 20] or apart
            neighbour = _window(others[rng.integers(len(others))], "") if others else ""
            pairs.append(Pair(episode=episode, show=show, question=question, asker="listener",
                              answer=_window(para, quote), target=R.normalise(quote),
                              speaker=para.speaker, neighbour=neighbour, position=n))
    return pairs


def readers_pairs(splits: Iterable[str], archive: Path, corpus: Path = R.CORPUS,
                  only: set[str] | None = None) -> list[Pair]:
    """Every training pair of the corpus files in ``splits`` (of the episodes in ``only``, when
    given), transcripts read from ``archive``."""
    items = corpus_items(splits, corpus)
    if only is not None:
        items = {e: v for e, v in items.items() if e in only}
    out: list[Pair] = []
    for episode, text in R.transcripts(items, archive):
        show = episode.rsplit("-", 1)[0]
        out.extend(pairs_for_episode(episode, items[episode], text, show))
    return out


def windows(transcript_text: str, size: int = WINDOW_WORDS, stride: int = WINDOW_STRIDE) -> list[str]:
    """The episode as overlapping windows of ``size`` words, paragraphs normalised."""
    words = " ".join(p.text for p in R.parse_transcript(transcript_text).paragraphs).split()
    return [" ".join(words[s:s + size]) for s in range(0, max(len(words) - size + stride, 1), stride)]


Encode = Callable[[list[str]], np.ndarray]


def dense_benchmark(encode: Encode, episodes: dict[str, list[dict]], texts: dict[str, str],
                    k: int = 5) -> dict:
    """hit@1, hit@k and MRR@10 of the corpus's answerable questions, each searched by ``encode``
    among its own episode's windows (a window hits when it holds any of its gold quotes, as the probe
    that motivated the corpus counted)."""
    hits1 = hitsk = rr = n = 0
    for episode, items in sorted(episodes.items()):
        if episode not in texts:
            continue
        wins = windows(texts[episode])
        wv = encode(wins)
        qs = questions_of(items)
        if not qs:
            continue
        qv = encode([q for q, _, _ in qs])
        scores = qv @ wv.T
        for (question, quotes, _), row in zip(qs, scores):
            held = [any(R.normalise(qt) in w for qt in quotes) for w in wins]
            order = np.argsort(-row)[:10]
            rank = next((r for r, i in enumerate(order) if held[i]), None)
            n += 1
            hits1 += rank == 0
            hitsk += rank is not None and rank < k
            rr += 0 if rank is None else 1 / (rank + 1)
    return {"questions": n, "hit@1": hits1 / max(n, 1), f"hit@{k}": hitsk / max(n, 1),
            "mrr": rr / max(n, 1)}


def write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)

