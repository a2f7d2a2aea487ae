"""What a chat model reads: the best passages that fit a token budget, merged where they touch, and
laid out in the order they were said.

    ranked hits --fill to budget (best first)--> chosen --merge neighbours--> Passage blocks
                --order: episode of the best hit first, each in conversation order--> [P1]..[Pn]

A chat model reads 5,000 words as easily as 700, and the answer is in the top 5 passages for fewer
questions than in the top 20; so with a chat model the evidence is a token budget, not a passage
count. Passages are chosen by rank until the budget is spent (one that does not fit is skipped and
a shorter one below may still fit). Two chosen passages that follow each other in one episode
become one block (what the second repeats of the first, its carried-in question or the sentence
a long turn is split on, is dropped), so the model reads a stretch of talk once, not as two fragments. Each block is labelled
with its episode, times, chapter and speakers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

from ..timecode import format_time
from ..types import Chunk, Hit

__all__ = ["Passage", "TokenCounter", "fill", "merge", "arrange", "format_passage", "format_passages",
           "context", "source_of"]

TokenCounter = Callable[[str], int]
TOUCH_S = 0.5   # a passage that starts within this of another's end follows it


@dataclass(frozen=True)
class Passage:
    """One labelled block of the prompt: ``hit`` is what the model reads (its chunk spans the
    retrieved passages it is made of), ``sources`` those passages in the order they were said."""

    hit: Hit
    sources: tuple[Hit, ...]


def format_passage(label: int, hit: Hit) -> str:
    c = hit.chunk
    header = f"[P{label}] {c.episode_title or c.episode} | {format_time(c.start_s)}-{format_time(c.end_s)}"
    if c.chapter:
        header += f" | chapter: {c.chapter}"
    if c.speakers:
        header += f" | speakers: {', '.join(c.speakers)}"
    return f"{header}\n{c.text}"


def format_passages(hits: Sequence[Hit]) -> str:
    return "\n\n".join(format_passage(i, h) for i, h in enumerate(hits, 1))


def _trim_to_sentences(hit: Hit, fits: Callable[[Hit], bool]) -> Hit:
    """The passage cut back to its first whole sentences that fit (at least one sentence)."""
    sentences = hit.chunk.sentences
    for n in range(len(sentences) - 1, 0, -1):
        end_s = sentences[n].start_s  # the passage now ends where its first dropped sentence began
        trimmed = replace(hit, chunk=replace(hit.chunk, sentences=sentences[:n], end_s=end_s))
        if fits(trimmed):
            return trimmed
    return replace(hit, chunk=replace(hit.chunk, sentences=sentences[:1],
                                      end_s=sentences[1].start_s if len(sentences) > 1
                                      else hit.chunk.end_s))


def fill(hits: Sequence[Hit], budget: int, count: TokenCounter, *, limit: int | None = None) -> list[Hit]:
    """Best-ranked passages whose labelled text fits ``budget`` tokens, in rank order (at most
    ``limit`` of them). A passage that does not fit is skipped; one below it may still fit. Only
    when even the best passage is too long is it cut, at a sentence boundary."""
    ranked = sorted(hits, key=lambda h: h.rank)  # stable: equal ranks keep retrieval order
    kept: list[Hit] = []
    used = 0
    for hit in ranked:
        if limit is not None and len(kept) >= limit:
            break
        cost = count(format_passage(len(kept) + 1, hit) + "\n\n")
        if used + cost <= budget:
            kept.append(hit)
            used += cost
        elif not kept:
            kept.append(_trim_to_sentences(hit, lambda h: count(format_passage(1, h) + "\n\n") <= budget))
            used += count(format_passage(1, kept[0]) + "\n\n")
    return kept


def _joined(first: Chunk, second: Chunk) -> Chunk:
    said = {(s.start_s, s.text) for s in first.sentences}
    extra = tuple(s for s in second.sentences if (s.start_s, s.text) not in said)
    speakers = tuple(dict.fromkeys(first.speakers + second.speakers))
    return replace(first, sentences=first.sentences + extra, end_s=max(first.end_s, second.end_s),
                   speakers=speakers, chapter=first.chapter if first.chapter == second.chapter
                   else " / ".join(c for c in (first.chapter, second.chapter) if c) or None)


def merge(hits: Sequence[Hit]) -> list[Passage]:
    """Chosen passages, those that follow each other in one episode joined into one block; each
    block ranked as its best passage. A passage that only repeats a few sentences of the block
    before it (a host's question carried in as context) stays apart, without them. Blocks come
    back in no particular order (see ``arrange``)."""
    blocks: list[Passage] = []
    for hit in sorted(hits, key=lambda h: (h.chunk.episode, h.chunk.start_s)):
        last = blocks[-1] if blocks and blocks[-1].hit.chunk.episode == hit.chunk.episode else None
        if last is not None and hit.chunk.start_s <= last.hit.chunk.end_s + TOUCH_S:
            best = min((last.hit, hit), key=lambda h: h.rank)
            block = replace(best, chunk=_joined(last.hit.chunk, hit.chunk))
            blocks[-1] = Passage(block, last.sources + (hit,))
            continue
        if last is not None:
            said = {(s.start_s, s.text) for s in last.hit.chunk.sentences}
            new = tuple(s for s in hit.chunk.sentences if (s.start_s, s.text) not in said)
            if new and len(new) < len(hit.chunk.sentences):
                blocks.append(Passage(replace(hit, chunk=replace(hit.chunk, sentences=new)), (hit,)))
                continue
        blocks.append(Passage(hit, (hit,)))
    return blocks


def arrange(blocks: Sequence[Passage]) -> list[Passage]:
    """The episode of the best block first; within an episode, the order of the conversation."""
    best: dict[str, int] = {}
    for p in blocks:
        best[p.hit.chunk.episode] = min(best.get(p.hit.chunk.episode, p.hit.rank), p.hit.rank)
    return sorted(blocks, key=lambda p: (best[p.hit.chunk.episode], p.hit.chunk.episode, p.hit.chunk.start_s))


def context(hits: Sequence[Hit], budget: int, count: TokenCounter, *, limit: int | None = None) -> list[Passage]:
    """The blocks a chat model reads, labelled P1.. in this order (see the module's docstring)."""
    return arrange(merge(fill(hits, budget, count, limit=limit)))


def source_of(passage: Passage, start_s: float) -> Hit:
    """The retrieved passage of a block that holds the moment ``start_s`` (a citation's time)."""
    inside = [h for h in passage.sources if h.chunk.start_s - TOUCH_S <= start_s]
    return inside[-1] if inside else passage.sources[0]
