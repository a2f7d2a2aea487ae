"""Quality across a catalog index: questions searched over every episode, naming none.

    rag eval --catalog [SOURCE] --index NAME [--limit 500]

Three sets:

- **mined**: host questions mined (``training/data.py``) from the index's episodes that training
  never saw (the validation share by episode, and the question sets' own episodes), sampled with
  a fixed seed. The gold is the asking episode and the guest's reply: *episode hit@k* counts a
  top-k passage from that episode, *passage hit@10* a top-10 passage holding the reply's opening
  (its first sentence, or 80% of it in one run: ``metrics.holds``). The question's own words are
  in the index (the host said them), so a passage holding the question but not the answer is
  left out of the ranking: otherwise every episode is found by its own question.
- **hand-written** (``eval/catalog_questions.jsonl``, scored per split: tune on dev, report test):
  "which guest said ...", "which episode ...",
  questions across episodes (each gold episode must be found: *all-episodes hit@10*), and questions
  the catalog does not answer (refused or not).
- **listeners'** (``eval/readers/``, its test split and its two held-out shows): the answerable
  questions of the index's episodes, not conversations, in listeners' words. *Episode hit@k*
  counts a top-k passage from the question's episode, *passage hit@10* a top-10 passage of it that
  holds a gold quote.

``SOURCE`` is the catalog the index was built from (default ``RAG_CATALOG``): the mined questions
need the transcripts' text.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Sequence

from . import metrics as M

QUESTIONS = M.REPO_ROOT / "eval" / "catalog_questions.jsonl"


def mined_questions(source: Path, episodes: set[str], limit: int = 500, seed: int = 0) -> list[dict]:
    """Up to ``limit`` mined host questions from the ``episodes`` that training never used."""
    from ..chunking import split_sentences
    from ..training.data import SHIPPED_HELD_OUT, iter_transcripts, mine_transcript, split_of

    wanted = {e for e in episodes if split_of(e) == "validation" or e in SHIPPED_HELD_OUT}
    items = []
    for show, name, text in iter_transcripts(source):
        if Path(name).stem in wanted:
            try:
                pairs = mine_transcript(text, name, show)
            except Exception:  # noqa: BLE001 - a transcript the miner cannot read has no questions
                continue
            for p in pairs:
                first = split_sentences(p.target)[0]
                if len(first.split()) >= 8:
                    items.append({"id": f"{p.episode}#{p.position}", "question": p.question,
                                  "episode": p.episode, "quote": first})
    random.Random(seed).shuffle(items)
    return sorted(items[:limit], key=lambda it: it["id"])


def _ranked(assistant, question: str) -> list:
    return assistant.search(question, k=10)


def score_mined(assistant, items: Sequence[dict], progress=None) -> dict:
    rows = []
    for n, it in enumerate(items):
        if progress:
            progress(n, len(items), it["id"])
        # The asking turn is in the index word for word: a passage holding the question but not
        # the answer is left out of the ranking, which then says where the answer ranks.
        hits = [h for h in assistant.search(it["question"], k=20)
                if M.holds(_plain(h.chunk), it["quote"]) or not M.holds(_plain(h.chunk), it["question"])][:10]
        episodes = [h.chunk.episode for h in hits]
        first = next((i for i, e in enumerate(episodes, 1) if e == it["episode"]), None)
        held = next((i for i, h in enumerate(hits, 1)
                     if h.chunk.episode == it["episode"] and M.holds(_plain(h.chunk), it["quote"])), None)
        rows.append({"id": it["id"], "episode_rank": first, "passage_rank": held})
    if progress:
        progress(len(items), len(items), "")
    return {"n": len(rows), **_rates(rows, "episode_rank", (1, 5, 10), "episode"),
            **_rates(rows, "passage_rank", (10,), "passage"), "rows": rows}


def score_written(assistant, items: Sequence[dict]) -> dict:
    rows = []
    for it in items:
        answer = assistant.ask(it["question"])
        hits = _ranked(assistant, it["question"])
        gold = set(it.get("gold_episodes") or [])
        episodes = [h.chunk.episode for h in hits]
        first = next((i for i, e in enumerate(episodes, 1) if e in gold), None)
        every = all(e in episodes for e in gold) if gold else None
        quotes = it.get("gold_quotes") or []
        held = next((i for i, h in enumerate(hits, 1) if M.held_quotes(_plain(h.chunk), quotes)), None)
        cited = {h.chunk.episode for c in answer.citations for h in answer.hits if h.chunk.id == c.passage_id}
        rows.append({"id": it["id"], "type": it.get("type"), "answerable": it.get("answerable", True),
                     "episode_rank": first, "passage_rank": held, "all_episodes": every,
                     "refused": answer.refused, "cited_episodes": sorted(cited),
                     "cites_gold_episodes": len(cited & gold), "gold_episodes": len(gold)})
    answerable = [r for r in rows if r["answerable"]]
    spanning = [r for r in answerable if r["all_episodes"] is not None and r["type"] == "across-episodes"]
    unanswerable = [r for r in rows if not r["answerable"]]
    return {"n": len(rows), **_rates(answerable, "episode_rank", (1, 5), "episode"),
            **_rates(answerable, "passage_rank", (10,), "passage"),
            "all_episodes@10": M.mean(float(r["all_episodes"]) for r in spanning) if spanning else None,
            # answers to questions across episodes that cite two or more of their gold episodes
            "answers_citing_several": sum(r["cites_gold_episodes"] >= 2 for r in spanning),
            # and of all their gold episodes, how many the answers cite
            "gold_episodes_cited": (sum(r["cites_gold_episodes"] for r in spanning),
                                    sum(r["gold_episodes"] for r in spanning)),
            "across_episodes": len(spanning),
            "unanswerable_refused": (sum(bool(r["refused"]) for r in unanswerable), len(unanswerable)),
            "answerable_refused": (sum(bool(r["refused"]) for r in answerable), len(answerable)),
            "rows": rows}


def readers_questions(episodes: set[str]) -> dict[str, list[dict]]:
    """The listeners' corpus's answerable questions (not conversations) about ``episodes``, by split:
    its test split and its held-out shows (nothing tuned on either)."""
    from . import readers as R

    plan = R.splits()
    out = {}
    for split, name in (("test", "listeners' test"), ("held_out_shows", "listeners' held-out shows")):
        items = []
        for episode in plan.get(split, ()):
            path = R.CORPUS / f"{episode}.jsonl"
            if episode in episodes and path.exists():
                items += [dict(it, episode=episode) for it in R.as_eval_items(R.load(path))
                          if it["answerable"] and it["type"] != "followup"]
        if items:
            out[name] = items
    return out


def score_readers(assistant, items: Sequence[dict], progress=None) -> dict:
    """Where each question's episode, and a passage of it holding a gold quote, rank across the
    whole index."""
    rows = []
    for n, it in enumerate(items):
        if progress:
            progress(n, len(items), it["id"])
        hits = _ranked(assistant, it["question"])
        first = next((i for i, h in enumerate(hits, 1) if h.chunk.episode == it["episode"]), None)
        held = next((i for i, h in enumerate(hits, 1) if h.chunk.episode == it["episode"]
                     and M.held_quotes(_plain(h.chunk), it["gold_quotes"])), None)
        rows.append({"id": it["id"], "episode_rank": first, "passage_rank": held})
    if progress:
        progress(len(items), len(items), "")
    return {"n": len(rows), **_rates(rows, "episode_rank", (1, 5, 10), "episode"),
            **_rates(rows, "passage_rank", (5, 10), "passage"), "rows": rows}


def _plain(chunk) -> str:
    return " ".join(s.text for s in chunk.sentences)


def _rates(rows: Sequence[dict], key: str, depths: Sequence[int], name: str) -> dict:
    out = {}
    for k in depths:
        out[f"{name}_hit@{k}"] = M.mean(float(r[key] is not None and r[key] <= k) for r in rows) if rows else None
    return out


def table(mined: dict | None, written: dict[str, dict], readers: dict[str, dict] | None = None) -> str:
    """``written``: split name -> ``score_written`` of that split's items; ``readers``: set name ->
    ``score_readers`` of its items."""
    lines = ["| set | n | episode hit@1 | episode hit@5 | passage hit@10 | all gold episodes in top 10 "
             "| answers citing 2+ gold episodes | gold episodes cited | unanswerable refused | answerable refused |",
             "|---|---|---|---|---|---|---|---|---|---|"]

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    if mined:
        lines.append(f"| mined host questions | {mined['n']} | {f(mined['episode_hit@1'])} | "
                     f"{f(mined['episode_hit@5'])} | {f(mined['passage_hit@10'])} | - | - | - | - | - |")
    for split, w in written.items():
        refused, of = w["unanswerable_refused"]
        wrongly, answerable = w.get("answerable_refused", (0, 0))
        lines.append(f"| hand-written, {split} | {w['n']} | {f(w['episode_hit@1'])} | "
                     f"{f(w['episode_hit@5'])} | {f(w['passage_hit@10'])} | "
                     f"{f(w['all_episodes@10'])} ({w['across_episodes']}) | "
                     f"{w['answers_citing_several']}/{w['across_episodes']} | "
                     f"{'/'.join(map(str, w.get('gold_episodes_cited', (0, 0))))} | {refused}/{of} | "
                     f"{wrongly}/{answerable} |")
    for name, r in (readers or {}).items():
        lines.append(f"| {name} | {r['n']} | {f(r['episode_hit@1'])} | {f(r['episode_hit@5'])} | "
                     f"{f(r['passage_hit@10'])} | - | - | - | - | - |")
    return "\n".join(lines)


def run(args, assistant, out: Path, progress=None) -> str:
    """``rag eval --catalog``: the three sets on ``assistant``'s index; writes catalog.json and catalog.md."""
    import json

    from ..config import catalog_path
    from ..errors import InputError

    source = Path(args.catalog) if args.catalog else catalog_path()
    if source is None or not source.exists():
        raise InputError("the mined questions need the catalog the index was built from: "
                         "give it (rag eval --catalog ARCHIVE --index NAME) or set RAG_CATALOG")
    episodes = {e["id"] for e in assistant.episodes()}
    mined = mined_questions(source, episodes, limit=args.limit)
    if not mined:
        raise InputError(f"index {assistant.name!r} holds no episode that training left out, so there "
                         "are no mined questions to ask; index more of the catalog")
    scored = score_mined(assistant, mined, progress=progress)
    written: dict[str, dict] = {}
    if QUESTIONS.exists():
        items = [it for it in M.load_items(QUESTIONS)
                 if not it.get("gold_episodes") or set(it["gold_episodes"]) <= episodes]
        for split in ("dev", "test"):   # dev to tune on, test to report
            chosen = [it for it in items if it.get("split", "test") == split]
            if chosen:
                written[split] = score_written(assistant, chosen)
    readers = {name: score_readers(assistant, items, progress=progress)
               for name, items in readers_questions(episodes).items()}
    text = table(scored, written, readers)
    out.mkdir(parents=True, exist_ok=True)
    (out / "catalog.json").write_text(json.dumps({"index": assistant.name, "episodes": len(episodes),
                                                  "mined": scored, "written": written, "readers": readers},
                                                 indent=1))
    (out / "catalog.md").write_text(f"# Catalog quality: index {assistant.name} ({len(episodes)} episodes)\n\n{text}\n")
    return text
