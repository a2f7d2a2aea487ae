"""Chunks by chapter: whole sentences of consecutive turns, sized with the embedding model's tokenizer.

Rules (each one is a test in tests/test_chunking.py):
- a chunk never crosses a chapter boundary;
- a chunk is built from whole sentences and every sentence keeps its speaker and its own time;
- turns are packed whole while they fit; a turn too long for one chunk is split at sentence
  boundaries with ``overlap_sentences`` repeated, so nothing falls past the model's 256-piece cut;
- an interview is questions and answers: a chunk that opens on an answer carries the host's
  question in front of it as context (``Sentence.context``), so "why did he..." finds the answer;
- ``start_s`` is the time of the chunk's own first word (question context excluded), ``end_s`` the
  start of whatever follows it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Iterable, Sequence

from .config import ChunkSettings
from .types import Chunk, Sentence, Transcript

TokenCounter = Callable[[str], int]

# A sentence ends at . ! ? or an ellipsis (and any closing quotes or brackets, which stay with it),
# followed by space and something that starts a sentence.
_SENTENCE_END = re.compile(r"[.!?…][\"”’)]*(\s+)(?=[\"“‘(]?[A-Z0-9])")
_ABBREVIATIONS = ("Mr.", "Mrs.", "Ms.", "Dr.", "e.g.", "i.e.", "vs.", "etc.", "St.", "Jr.")


def _pieces(text: str) -> list[str]:
    out, last = [], 0
    for m in _SENTENCE_END.finditer(text):
        out.append(text[last:m.start(1)])
        last = m.end(1)
    out.append(text[last:])
    return out


def split_sentences(text: str) -> list[str]:
    """``We said "this is it." Was there`` -> ``We said "this is it."``, ``Was there``."""
    parts: list[str] = []
    for piece in _pieces(text.strip()):
        piece = piece.strip()
        if not piece:
            continue
        if parts and parts[-1].endswith(_ABBREVIATIONS):
            parts[-1] += " " + piece
        else:
            parts.append(piece)
    return parts


def transcript_sentences(transcript: Transcript) -> list[tuple[str | None, Sentence, int]]:
    """Every sentence in order as (chapter, Sentence, turn number)."""
    out = []
    for turn_no, turn in enumerate(transcript.turns):
        for para in turn.paragraphs:
            offset = 0
            for text in split_sentences(para.text):
                exact = offset == 0 and not para.estimated
                out.append((turn.chapter, Sentence(
                    text=text, speaker=turn.speaker, start_s=round(para.time_at(offset), 2),
                    estimated=not exact), turn_no))
                offset += len(text.split())
    return out


def _split_long(sentence: Sentence, max_tokens: int, count: TokenCounter) -> list[Sentence]:
    """A run-on 'sentence' longer than a chunk is cut into word windows (rare in speech)."""
    words = sentence.text.split()
    if count(sentence.text) <= max_tokens:
        return [sentence]
    out, step = [], max(8, int(len(words) * max_tokens / max(count(sentence.text), 1) * 0.9))
    for i in range(0, len(words), step):
        out.append(Sentence(" ".join(words[i:i + step]), sentence.speaker, sentence.start_s,
                            True, sentence.context))
    return out


def _chunk_id(episode: str, chapter: str | None, sentences: Iterable[Sentence]) -> str:
    h = hashlib.sha1(f"{episode}|{chapter}".encode())
    for s in sentences:
        h.update(f"|{s.speaker}|{s.start_s}|{s.text}".encode())
    return f"{episode}-{h.hexdigest()[:10]}"


def _render(sentences: list[Sentence]) -> str:
    return Chunk("", "", None, (), 0.0, 0.0, tuple(sentences)).text


def rendered_tokens(sentences: Sequence[Sentence], count: TokenCounter) -> int:
    """``count(_render(sentences))`` without tokenizing the rendered text again: word-piece
    tokenizers split on whitespace and punctuation first, so a text's count is its pieces' counts
    (each less its [CLS]/[SEP]) plus those two. Exact for BERT's tokenizer and the fake's."""
    if not sentences:
        return 0
    total, speaker = 2, None
    for s in sentences:
        if s.speaker != speaker:
            total += count(f"{s.speaker}:") - 2
            speaker = s.speaker
        total += count(s.text) - 2
    return total


def _memo(count: TokenCounter) -> TokenCounter:
    """``count`` remembered per text: chunking asks for each sentence's count several times."""
    seen: dict[str, int] = {}

    def counted(text: str) -> int:
        n = seen.get(text)
        if n is None:
            n = seen[text] = count(text)
        return n

    return counted


def chunk_transcript(transcript: Transcript, count_tokens: TokenCounter,
                     settings: ChunkSettings = ChunkSettings(),
                     model_max_tokens: int = 256) -> list[Chunk]:
    episode = transcript.episode.id
    count_tokens = _memo(count_tokens)
    rows = transcript_sentences(transcript)
    limit = min(settings.max_tokens, model_max_tokens - 8)
    rows = [(ch, piece, t) for ch, s, t in rows for piece in _split_long(s, limit // 2, count_tokens)]

    # Group sentences into chapter sections, and each section into turns.
    sections: list[tuple[str | None, list[list[Sentence]]]] = []
    last_turn = None
    for chapter, sentence, turn_no in rows:
        if not sections or sections[-1][0] != chapter:
            sections.append((chapter, []))
            last_turn = None
        turns = sections[-1][1]
        if turn_no != last_turn:
            turns.append([])
            last_turn = turn_no
        turns[-1].append(sentence)

    chunks: list[Chunk] = []
    for chapter, turns in sections:
        section_chunks = _pack_section(turns, count_tokens, limit, settings)
        section_end = _section_end(transcript, chapter, turns)
        for i, sentences in enumerate(section_chunks):
            nxt = section_chunks[i + 1] if i + 1 < len(section_chunks) else None
            content = [s for s in sentences if not s.context]
            end_s = next((s.start_s for s in (nxt or []) if not s.context), section_end)
            end_s = max(end_s, content[-1].start_s if content else sentences[-1].start_s)
            speakers = tuple(dict.fromkeys(s.speaker for s in sentences))
            chunks.append(Chunk(
                id=_chunk_id(episode, chapter, sentences), episode=episode, chapter=chapter,
                speakers=speakers, start_s=_own_start(sentences), end_s=round(end_s, 2),
                sentences=tuple(sentences)))
    _check_fit(chunks, count_tokens, model_max_tokens)
    return chunks


def _own_start(sentences: list[Sentence]) -> float:
    """The time of the chunk's own first word. The host's question carried in front as context
    belongs to the passage before: counting it would give every chunk of a long answer the
    question's time (three sources all shown as [28:35])."""
    return next((s.start_s for s in sentences if not s.context), sentences[0].start_s)


def _section_end(transcript: Transcript, chapter: str | None, turns: list[list[Sentence]]) -> float:
    """Where the section's content stops: the next chapter's start, else the last paragraph's end."""
    if chapter is not None:
        chapters = list(transcript.chapters)
        for i, c in enumerate(chapters):
            if c.title == chapter and i + 1 < len(chapters):
                return chapters[i + 1].start_s
    ends = [p.end_s for t in transcript.turns if t.chapter == chapter for p in t.paragraphs
            if p.end_s is not None]
    return max(ends) if ends else turns[-1][-1].start_s


def _pack_section(turns: list[list[Sentence]], count: TokenCounter, limit: int,
                  settings: ChunkSettings) -> list[list[Sentence]]:
    """Greedy packing of whole turns; long turns split with overlap; answers get their question."""
    chunks: list[list[Sentence]] = []
    current: list[Sentence] = []
    previous_turn: list[Sentence] = []

    def size(sentences: list[Sentence]) -> int:
        return rendered_tokens(sentences, count)

    def flush():
        nonlocal current
        if current:
            chunks.append(current)
        current = []

    for turn in turns:
        if current and size(current + turn) <= limit:
            current = current + turn
        else:
            flush()
            context = _question_context(previous_turn, turn, count, settings.question_context_tokens)
            windows = _windows(turn, count, limit - size(context) if context else limit,
                               settings.overlap_sentences)
            for j, window in enumerate(windows):
                current = context + window
                if j < len(windows) - 1:
                    flush()
        previous_turn = turn
    flush()
    return chunks


def _question_context(previous: list[Sentence], turn: list[Sentence], count: TokenCounter,
                      budget: int) -> list[Sentence]:
    """The last sentences of the previous speaker's turn, when it asked what this turn answers."""
    if not previous or not turn or previous[0].speaker == turn[0].speaker:
        return []
    picked: list[Sentence] = []
    used = 0
    for s in reversed(previous):
        cost = count(s.text) + 2
        if used + cost > budget:
            break
        picked.insert(0, Sentence(s.text, s.speaker, s.start_s, s.estimated, context=True))
        used += cost
        if s.text.endswith("?") and len(picked) >= 1 and used > budget // 2:
            break
    # Keep it only if it holds a question: context that is not a question is noise.
    return picked if any("?" in s.text for s in picked) else []


def _windows(turn: list[Sentence], count: TokenCounter, limit: int, overlap: int) -> list[list[Sentence]]:
    windows: list[list[Sentence]] = []
    start = 0
    while start < len(turn):
        end = start
        used = 0
        while end < len(turn):
            cost = count(turn[end].text) + (4 if end == start else 0)
            if end > start and used + cost > limit:
                break
            used += cost
            end += 1
        windows.append(turn[start:end])
        if end >= len(turn):
            break
        start = max(end - overlap, start + 1)
    return windows


def _check_fit(chunks: list[Chunk], count: TokenCounter, model_max_tokens: int) -> None:
    """Trim question context (never content) from any chunk the model would truncate."""
    for i, chunk in enumerate(chunks):
        sentences = list(chunk.sentences)
        while rendered_tokens(chunk.sentences, count) > model_max_tokens and sentences and sentences[0].context:
            sentences.pop(0)
            chunk = Chunk(chunk.id, chunk.episode, chunk.chapter,
                          tuple(dict.fromkeys(s.speaker for s in sentences)),
                          _own_start(sentences), chunk.end_s, tuple(sentences))
        chunks[i] = chunk
