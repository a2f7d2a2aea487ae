#!/usr/bin/env python3
"""Validate the evaluation question set for the Practical AI #260 interview.

Usage:
    python eval/validate.py [FILE] [--transcript PATH]

Prints a summary (counts by type and split) and exits non-zero, listing every
problem, when the file does not satisfy the rules described in eval/README.md.

Importable (pure stdlib):
    load_items(path) -> list[dict]          items, meta line skipped
    validate(path, transcript_path) -> list[str]   problems (empty when clean)
    normalise(text) -> str                  the normalisation used for matching
"""
from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parent
REPO_ROOT = EVAL_DIR.parent
DEFAULT_QUESTIONS = EVAL_DIR / "questions.jsonl"

TYPES = (
    "factual",
    "paraphrase",
    "why",
    "opinion",
    "host",
    "chapter",
    "time",
    "multi",
    "followup",
    "unanswerable",
)
SPLITS = ("dev", "test")

# Chapter titles exactly as listed on the episode page (sponsor chapters are
# ads, not interview content, so questions may not be scoped to them).
CHAPTERS = {
    "Welcome to Practical AI": 0,
    "Runway's Anastasis Germanidis": 43,
    "Prior technology interests": 281,
    "The initial vision": 393,
    "A need to explore": 501,
    "Sponsor: Neo4j": 743,
    "Becoming an entrepreneur": 816,
    "Bringing the vision to life": 953,
    "Navigating funding and customers": 1106,
    "Early adoption of gen AI": 1290,
    "Learning from early challenges": 1406,
    "Sponsor: Changelog News": 1575,
    "Runway today": 1686,
    "Other players in the AI arms race": 1841,
    "Building long-term tools": 2039,
    "Future of video generation": 2157,
    "Guidance for young listeners": 2315,
    "Thanks for joining us!": 2454,
    "Outro": 2479,
}
EPISODE_END_S = 2520

MIN_ITEMS = 80
MIN_UNANSWERABLE = 15
MIN_FOLLOWUPS = 10
QUOTE_MIN_WORDS = 6
QUOTE_MAX_WORDS = 20
MAX_QUOTES = 3


# --------------------------------------------------------------------------
# normalisation

_LABEL_RE = re.compile(r"\*\*[^*\n]{1,80}?:\*\*|\*\*[^*\n]{1,80}?\*\*:")
_MARKER_RE = re.compile(r"\\?\[[^\]\n]*\\?\]")
_DASH_RE = re.compile(r"\s*(?:--|[-\u2010\u2011\u2012\u2013\u2014\u2015\u2212])\s*")
_QUOTE_MAP = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u02bc": "'",
        "`": "'",
        "\u00b4": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u2033": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u00a0": " ",
    }
)


def normalise(text: str) -> str:
    """Normalise transcript text or a quote for robust exact matching.

    Strips Markdown speaker labels (``**Name:**``, ``**Break**:``), inline
    ``\\[..\\]`` markers, backslashes and asterisks; reads HTML entities
    (``&#39;``: some archive files hold them, and quotes copied from those do,
    while rag's parser reads them as the characters they stand for); unifies
    curly/straight quotes and apostrophes, dashes (en/em dash, ``--``, ``-``)
    and ellipses; collapses whitespace; lower-cases.
    """
    t = _LABEL_RE.sub(" ", html.unescape(text))
    t = _MARKER_RE.sub(" ", t)
    t = t.replace("\\", "").replace("*", "")
    t = t.translate(_QUOTE_MAP)
    t = t.replace("\u2026", "...")
    t = re.sub(r"\.{3,}", "...", t)
    t = _DASH_RE.sub(" - ", t)
    t = re.sub(r"\s+", " ", t).strip()
    return t.lower()


def transcript_segments(raw: str) -> list[str]:
    """Normalised segments a quote must lie within: paragraphs, split further at
    speaker labels and inline markers (a quote may not span any of those)."""
    segments: list[str] = []
    for para in re.split(r"\n\s*\n", raw):
        for piece in re.split(_LABEL_RE.pattern + "|" + _MARKER_RE.pattern, para):
            n = normalise(piece or "")
            if n:
                segments.append(n)
    return segments


def _count(haystack: str, needle: str) -> int:
    n, start = 0, 0
    while True:
        i = haystack.find(needle, start)
        if i < 0:
            return n
        n += 1
        start = i + 1


# --------------------------------------------------------------------------
# loading

def default_transcript_path() -> Path:
    inside = REPO_ROOT / "rag" / "data" / "practical-ai-260" / "transcript.md"
    if inside.exists():
        return inside
    return (REPO_ROOT / ".." / "shared" / "data" / "practical-ai-260" / "transcript.md").resolve()


def _read_lines(path) -> list[tuple[int, str]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                out.append((lineno, line))
    return out


def load_items(path) -> list[dict]:
    """Return the question items of a JSONL file, skipping the meta line."""
    items = []
    for _, line in _read_lines(path):
        obj = json.loads(line)
        if isinstance(obj, dict) and "meta" in obj:
            continue
        items.append(obj)
    return items


# --------------------------------------------------------------------------
# validation

def _is_str_list(v) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _check_quote(where: str, q: str, full: str, segments: list[str], problems: list[str]) -> None:
    if not isinstance(q, str) or not q.strip():
        problems.append(f"{where}: empty or non-string quote {q!r}")
        return
    words = len(q.split())
    if words < QUOTE_MIN_WORDS or words > QUOTE_MAX_WORDS:
        problems.append(
            f"{where}: quote has {words} words (want {QUOTE_MIN_WORDS}-{QUOTE_MAX_WORDS}): {q!r}"
        )
    if re.search(r"\*\*|\\\[|\\\]", q):
        problems.append(f"{where}: quote contains markup: {q!r}")
    nq = normalise(q)
    if not nq:
        problems.append(f"{where}: quote is empty after normalisation: {q!r}")
        return
    in_segments = sum(_count(s, nq) for s in segments)
    if in_segments == 1:
        return
    if in_segments > 1:
        problems.append(f"{where}: quote occurs {in_segments} times in the transcript (want exactly once): {q!r}")
    elif _count(full, nq):
        problems.append(
            f"{where}: quote spans a paragraph, speaker label or [..] marker boundary: {q!r}"
        )
    else:
        problems.append(f"{where}: quote not found in transcript: {q!r}")


def where_of(lineno: int, item: dict) -> str:
    return f"line {lineno} ({item.get('id')})"


def validate(path, transcript_path=None) -> list[str]:
    """Validate the question file; return a list of problems (empty if clean)."""
    problems: list[str] = []
    transcript_path = Path(transcript_path) if transcript_path else default_transcript_path()
    try:
        raw = Path(transcript_path).read_text(encoding="utf-8")
    except OSError as e:
        return [f"cannot read transcript {transcript_path}: {e}"]
    full = normalise(raw)
    segments = transcript_segments(raw)

    try:
        lines = _read_lines(path)
    except OSError as e:
        return [f"cannot read question file {path}: {e}"]
    if not lines:
        return [f"{path}: file is empty"]

    records: list[tuple[int, dict]] = []
    for lineno, line in lines:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"line {lineno}: invalid JSON: {e}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"line {lineno}: not a JSON object")
            continue
        records.append((lineno, obj))

    # meta line
    metas = [(ln, o) for ln, o in records if "meta" in o]
    if not records or "meta" not in records[0][1]:
        problems.append("first line must be the meta object {\"meta\": {...}}")
    if len(metas) > 1:
        problems.append(f"{len(metas)} meta lines (want exactly one, the first)")
    held_out = False
    for ln, o in metas[:1]:
        meta = o["meta"]
        # A held-out set (eval/episodes/): another episode, test items only. Its quotes, ids and
        # fields are checked like the main set's; the main set's minimums and the #260 chapter
        # list and length are not its rules.
        held_out = isinstance(meta, dict) and meta.get("held_out") is True
        if not isinstance(meta, dict):
            problems.append(f"line {ln}: meta must be an object")
        else:
            for key in ("description", "splits", "license", "version"):
                if key not in meta:
                    problems.append(f"line {ln}: meta lacks {key!r}")
            splits = meta.get("splits")
            if not isinstance(splits, dict) or set(splits) != set(SPLITS):
                problems.append(f"line {ln}: meta.splits must describe exactly 'dev' and 'test'")
            lic = meta.get("license", "")
            if not isinstance(lic, str) or "CC BY-SA 4.0" not in lic or "Changelog Media" not in lic:
                problems.append(f"line {ln}: meta.license must credit Changelog Media LLC under CC BY-SA 4.0")

    items = [(ln, o) for ln, o in records if "meta" not in o]
    ids = Counter(o.get("id") for _, o in items)
    for i, n in ids.items():
        if n > 1:
            problems.append(f"id {i!r} used {n} times")

    by_type_split: Counter = Counter()
    n_unans = n_follow = 0
    for ln, it in items:
        iid = it.get("id")
        where = f"line {ln} ({iid})"
        if not isinstance(iid, str) or not iid:
            problems.append(f"{where}: missing or non-string id")
        for key, typ in (("question", str), ("answer", str), ("answerable", bool),
                         ("split", str), ("type", str)):
            if key not in it:
                problems.append(f"{where}: missing field {key!r}")
            elif not isinstance(it[key], typ):
                problems.append(f"{where}: field {key!r} must be {typ.__name__}")
        if "gold_quotes" not in it:
            problems.append(f"{where}: missing field 'gold_quotes'")
        elif not _is_str_list(it["gold_quotes"]):
            problems.append(f"{where}: gold_quotes must be a list of strings")
        if isinstance(it.get("question"), str) and not it["question"].strip():
            problems.append(f"{where}: empty question")

        split, typ = it.get("split"), it.get("type")
        if split not in SPLITS:
            problems.append(f"{where}: split {split!r} not in {SPLITS}")
        if typ not in TYPES:
            problems.append(f"{where}: type {typ!r} not in {TYPES}")
        if split in SPLITS and typ in TYPES:
            by_type_split[(typ, split)] += 1

        quotes = it.get("gold_quotes") if _is_str_list(it.get("gold_quotes")) else []
        answerable = it.get("answerable")
        needs_all = it.get("needs_all", False)
        if "needs_all" in it and not isinstance(needs_all, bool):
            problems.append(f"{where}: needs_all must be a bool")

        if answerable is False:
            n_unans += 1
            if quotes:
                problems.append(f"{where}: unanswerable item must have no gold_quotes")
            if it.get("answer", "") != "":
                problems.append(f"{where}: unanswerable item must have an empty answer")
            if typ not in (None, "unanswerable"):
                problems.append(f"{where}: answerable=false requires type 'unanswerable'")
            if needs_all:
                problems.append(f"{where}: unanswerable item cannot need_all")
        elif answerable is True:
            if typ == "unanswerable":
                problems.append(f"{where}: type 'unanswerable' requires answerable=false")
            if not 1 <= len(quotes) <= MAX_QUOTES:
                problems.append(f"{where}: answerable item needs 1-{MAX_QUOTES} gold_quotes, has {len(quotes)}")
            if isinstance(it.get("answer"), str) and not it["answer"].strip():
                problems.append(f"{where}: answerable item needs a reference answer")
            if needs_all and len(quotes) < 2:
                problems.append(f"{where}: needs_all item needs at least 2 gold_quotes")
            if len({normalise(q) for q in quotes}) != len(quotes):
                problems.append(f"{where}: duplicate gold quotes")
            for k, q in enumerate(quotes):
                _check_quote(f"{where} gold_quotes[{k}]", q, full, segments, problems)

        if typ == "multi":
            if not needs_all or len(quotes) != 2:
                problems.append(f"{where}: multi item needs needs_all=true and exactly 2 quotes")
        if typ == "chapter" and not held_out:
            ch = it.get("chapter")
            if ch not in CHAPTERS:
                problems.append(f"{where}: chapter {ch!r} is not an exact chapter title")
            elif ch.startswith("Sponsor:"):
                problems.append(f"{where}: chapter {ch!r} is a sponsor break, not interview content")
        if typ == "time":
            ts = it.get("time_s")
            if isinstance(ts, bool) or not isinstance(ts, (int, float)):
                problems.append(f"{where}: time item needs numeric time_s")
            elif ts < 0 or (ts > EPISODE_END_S and not held_out):
                problems.append(f"{where}: time_s {ts} outside the episode")
        if typ == "followup":
            n_follow += 1
            hist = it.get("history")
            if not _is_str_list(hist) or not hist or not all(h.strip() for h in hist):
                problems.append(f"{where}: followup needs history = non-empty list of strings")
            hq = it.get("history_gold_quotes")
            if not _is_str_list(hq) or not hq:
                problems.append(f"{where}: followup needs history_gold_quotes = non-empty list of strings")
            else:
                if len(hq) > MAX_QUOTES:
                    problems.append(f"{where}: at most {MAX_QUOTES} history_gold_quotes")
                for k, q in enumerate(hq):
                    _check_quote(f"{where} history_gold_quotes[{k}]", q, full, segments, problems)
        elif "history" in it:
            problems.append(f"{where}: only followup items may carry history")

    # minimum counts and split coverage
    if held_out:
        problems += [f"{where_of(ln, it)}: a held-out set has test items only"
                     for ln, it in items if it.get("split") != "test"]
        return problems
    if len(items) < MIN_ITEMS:
        problems.append(f"only {len(items)} items (want >= {MIN_ITEMS})")
    if n_unans < MIN_UNANSWERABLE:
        problems.append(f"only {n_unans} unanswerable items (want >= {MIN_UNANSWERABLE})")
    if n_follow < MIN_FOLLOWUPS:
        problems.append(f"only {n_follow} followup items (want >= {MIN_FOLLOWUPS})")
    for typ in TYPES:
        for split in SPLITS:
            if by_type_split[(typ, split)] == 0:
                problems.append(f"type {typ!r} has no items in split {split!r}")
    return problems


def summary(path) -> str:
    items = load_items(path)
    c: Counter = Counter((it.get("type"), it.get("split")) for it in items)
    lines = [f"{len(items)} items in {path}", f"{'type':<14}{'dev':>5}{'test':>6}{'total':>7}"]
    for typ in TYPES:
        d, t = c[(typ, "dev")], c[(typ, "test")]
        lines.append(f"{typ:<14}{d:>5}{t:>6}{d + t:>7}")
    d = sum(v for (_, s), v in c.items() if s == "dev")
    t = sum(v for (_, s), v in c.items() if s == "test")
    lines.append(f"{'all':<14}{d:>5}{t:>6}{d + t:>7}")
    ans = sum(1 for it in items if it.get("answerable") is True)
    lines.append(f"answerable {ans}, unanswerable {len(items) - ans}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(DEFAULT_QUESTIONS))
    ap.add_argument("--transcript", default=None, help="transcript.md (default: %s)" % default_transcript_path())
    args = ap.parse_args(argv)
    problems = validate(args.file, args.transcript)
    try:
        print(summary(args.file))
    except (OSError, json.JSONDecodeError) as e:
        print(f"cannot summarise {args.file}: {e}")
    if problems:
        print(f"\n{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
