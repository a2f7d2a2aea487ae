"""Citations the model wrote, checked against the passages it was given. Pure functions.

The model cites passage labels (``[P2]``, ``[P1, P3]``) or timestamps (``[13:36]``,
``[1:02:03]``). The code owns the labels: each one maps to a retrieved passage, and a timestamp
must fall inside some passage's time span. A citation that matches nothing is removed from the
text and reported. The kept ones are rendered as ``[MM:SS]`` so the reader sees times, and each
becomes a ``Citation`` quoting the passage sentence closest in wording to the claim it backs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from .timecode import format_time, parse_time
from .types import Citation, Hit, Sentence

__all__ = ["Ref", "Mark", "Checked", "find_marks", "resolve", "check_citations", "check_quotes",
           "best_sentence", "words", "QUOTE_OPENERS"]

TIME_TOLERANCE_S = 5.0   # a timestamp a few seconds outside a passage still means that passage

_BRACKET_RE = re.compile(r"\[([^\[\]\n]{1,80})\]")
_LABEL_RE = re.compile(r"P\s*(\d{1,3})", re.I)
_LABEL_RANGE_RE = re.compile(r"P\s*(\d{1,3})\s*[-–]\s*P?\s*(\d{1,3})", re.I)
_TIME_RE = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_WORD_RE = re.compile(r"[a-z0-9']+")
# A quotation in the answer: “curly” or "straight" double quotes around the speaker's words.
_QUOTE_RE = re.compile(r"\u201c([^\u201d\n]{1,600})\u201d|\"([^\"\n]{1,600})\"")
_ELLIPSIS_RE = re.compile(r"\.\.\.|\u2026|\[\.\.\.\]")
QUOTE_OPENERS = ("\u201c", '"')
_STOPWORDS = frozenset(
    "a an the and or but of to in on at for with by from as is are was were be been it its this "
    "that these those he she they we you i his her their our your what which who whom how why "
    "when where do does did so not no yes there here about into than then also just very can "
    "could would should will has have had say says said".split())


@dataclass(frozen=True)
class Ref:
    raw: str                     # "P2" or "13:36", as the model wrote it
    label: int | None = None     # 2 for "P2"
    seconds: float | None = None


@dataclass(frozen=True)
class Mark:
    """One bracketed citation in the text, e.g. ``[P1, P3]`` at characters start..end."""

    start: int
    end: int
    refs: tuple[Ref, ...]


@dataclass(frozen=True)
class Checked:
    text: str                    # citations rendered as [MM:SS]; unmatched ones removed
    citations: tuple[Citation, ...]
    notes: tuple[str, ...]


def _parse_ref(item: str) -> Ref | None:
    item = item.strip()
    if m := _LABEL_RE.fullmatch(item):
        return Ref(raw=f"P{int(m.group(1))}", label=int(m.group(1)))
    if _TIME_RE.fullmatch(item):
        try:
            return Ref(raw=item, seconds=parse_time(item))
        except ValueError:  # "12:75" looks like a time but is not one: still a bad citation
            return Ref(raw=item, seconds=-1.0)
    return None


def _parse_item(item: str) -> list[Ref | None]:
    """One comma-separated item; a label range "P1-P3" stands for P1, P2, P3."""
    if (m := _LABEL_RANGE_RE.fullmatch(item.strip())) and int(m.group(1)) <= int(m.group(2)) <= 50:
        return [Ref(raw=f"P{n}", label=n) for n in range(int(m.group(1)), int(m.group(2)) + 1)]
    return [_parse_ref(item)]


def find_marks(text: str) -> list[Mark]:
    """Bracketed groups made only of labels and timestamps; other brackets are left alone."""
    marks = []
    for m in _BRACKET_RE.finditer(text):
        items = re.split(r"[,;]|\band\b", m.group(1))
        refs = [ref for i in items if i.strip() for ref in _parse_item(i)]
        if refs and all(refs):
            marks.append(Mark(m.start(), m.end(), tuple(refs)))  # type: ignore[arg-type]
    return marks


def resolve(ref: Ref, hits: Sequence[Hit], tolerance: float = TIME_TOLERANCE_S) -> int | None:
    """Index of the passage a reference points to, or None. Labels are 1-based: P1 is hits[0]."""
    if ref.label is not None:
        return ref.label - 1 if 1 <= ref.label <= len(hits) else None
    t = ref.seconds if ref.seconds is not None else -1.0
    if t < 0:
        return None
    inside = [i for i, h in enumerate(hits)
              if h.chunk.start_s - tolerance <= t <= h.chunk.end_s + tolerance]
    # overlapping passages: prefer the one whose start is closest before the time
    return min(inside, key=lambda i: abs(t - hits[i].chunk.start_s), default=None)


def words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall(text.lower()) if w not in _STOPWORDS}


def best_sentence(claim: str, hit: Hit, near_s: float | None = None) -> Sentence | None:
    """The passage sentence sharing most words with the claim (ties: nearest ``near_s``, then first)."""
    sentences = [s for s in hit.chunk.sentences if not s.context] or list(hit.chunk.sentences)
    if not sentences:
        return None
    claim_words = words(claim)

    def score(item: tuple[int, Sentence]) -> tuple:
        i, s = item
        distance = abs(s.start_s - near_s) if near_s is not None else 0.0
        return (-len(claim_words & words(s.text)), distance, i)

    return min(enumerate(sentences), key=score)[1]


def _claim_before(text: str, marks: list[Mark], mark: Mark) -> str:
    """The answer sentence a citation backs: the one it ends (or follows, if it opens a sentence)."""
    clean = text[: mark.start]
    for other in reversed(marks):  # drop earlier citation brackets from the claim text
        if other.end <= mark.start:
            clean = clean[: other.start] + " " + clean[other.end:]
    pieces = [p for p in _SENTENCE_END_RE.split(clean.strip()) if p.strip()]
    if not pieces:
        return ""
    last = pieces[-1]
    if len(last.split()) < 3 and len(pieces) > 1:  # "Claim. [P1]" -> the claim before the mark
        last = pieces[-2] + " " + last
    return last


def _said(text: str) -> str:
    """Words only, lower case, one space apart and padded: what a quotation is matched on (the
    model may change punctuation, case and apostrophes, never the words)."""
    return " " + " ".join(_WORD_RE.findall(text.lower().replace("\u2019", "'"))) + " "


def check_quotes(text: str, hits: Sequence[Hit], tolerance: float = TIME_TOLERANCE_S) -> tuple[str, list[str]]:
    """The text with the quotation marks taken off every quotation that is not the words of the
    passage it cites (the first citation after it; with none, of any passage given), and a note
    for each. An ellipsis inside a quotation may skip words: each piece must be there."""
    marks = find_marks(text)
    notes: list[str] = []

    def cited(end: int) -> list[Hit]:
        mark = next((m for m in marks if m.start >= end), None)
        found = [resolve(r, hits, tolerance) for r in mark.refs] if mark else []
        return [hits[i] for i in found if i is not None] or list(hits)

    def keep(match: re.Match) -> str:
        quote = match.group(1) if match.group(1) is not None else match.group(2)
        if find_marks(quote):   # a citation inside: the marks of two quotations, paired wrongly
            return match.group(0)
        pieces = [_said(p) for p in _ELLIPSIS_RE.split(quote) if _said(p).strip()]
        said = [_said(h.chunk.text) for h in cited(match.end())]
        if not pieces or all(any(p in s for s in said) for p in pieces):
            return match.group(0)
        short = quote if len(quote) <= 60 else quote[:59] + "\u2026"
        notes.append(f"removed the quotation marks from \u201c{short}\u201d: not the words of the passage it cites")
        return quote

    return _QUOTE_RE.sub(keep, text), notes


def check_citations(text: str, hits: Sequence[Hit], tolerance: float = TIME_TOLERANCE_S,
                    episode_labels: bool = False, quotes: bool = False) -> Checked:
    """``episode_labels``: render ``[practical-ai-260 13:36]`` (an index of several episodes).
    ``quotes``: also check quotations (``check_quotes``), as a chat model's answer needs."""
    quote_notes: list[str] = []
    if quotes:
        text, quote_notes = check_quotes(text, hits, tolerance)
    marks = find_marks(text)
    out: list[str] = []
    citations: dict[tuple[str, float], Citation] = {}
    notes: list[str] = []
    cursor = 0
    for mark in marks:
        out.append(text[cursor: mark.start])
        cursor = mark.end
        claim = _claim_before(text, marks, mark)
        times: list[str] = []
        for ref in mark.refs:
            index = resolve(ref, hits, tolerance)
            if index is None:
                notes.append(f"removed citation [{ref.raw}]: matches no retrieved passage")
                continue
            hit = hits[index]
            sentence = best_sentence(claim, hit, near_s=ref.seconds)
            start_s = ref.seconds if ref.seconds is not None else (
                sentence.start_s if sentence else hit.chunk.start_s)
            start_s = min(max(start_s, hit.chunk.start_s), hit.chunk.end_s)
            label = f"{hit.chunk.episode} {format_time(start_s)}" if episode_labels else format_time(start_s)
            if label not in times:
                times.append(label)
            key = (hit.chunk.id, start_s)
            if key not in citations:
                citations[key] = Citation(
                    passage_id=hit.chunk.id, start_s=start_s, chapter=hit.chunk.chapter,
                    speaker=sentence.speaker if sentence else (hit.chunk.speakers or ("",))[0],
                    quote=sentence.text if sentence else "",
                    episode=hit.chunk.episode if episode_labels else "",
                    estimated=sentence.estimated if sentence and ref.seconds is None else True)
        if times:
            out.append(f"[{', '.join(times)}]")
        elif out:  # the whole bracket went: don't leave "claim ." behind
            out[-1] = out[-1].rstrip(" ")
    out.append(text[cursor:])
    rendered = "".join(out)
    if notes:  # a removed bracket may leave "claim ." behind
        rendered = re.sub(r"[ \t]+([.,;:!?])", r"\1", rendered)
    rendered = re.sub(r"(\[[\w.:, -]+\])(\s*\1)+", r"\1", rendered)  # "[13:36] [13:36]" -> once
    return Checked(text=rendered.strip(), citations=tuple(citations.values()),
                   notes=tuple(notes + quote_notes))
