"""The frozen values that flow between stages.

    parse    -> Transcript (Episode, Chapters, Turns of Paragraphs)
    timing   -> the same Transcript with every Paragraph timed (start_s, end_s, estimated)
    chunk    -> Chunk (whole sentences of consecutive turns inside one chapter)
    retrieve -> Hit (a Chunk with a score and the sentences that matched)
    answer   -> Answer (text, Citations, the Hits it was grounded on)

Nothing here imports anything heavy; every stage can be tested with these alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Callable

from .timecode import format_time

__all__ = [
    "Episode", "Chapter", "Marker", "Paragraph", "Turn", "Transcript",
    "Sentence", "Chunk", "Hit", "Citation", "Answer", "Usage", "Filters", "Exchange", "Question", "Signals",
    "Evidence", "replace",
]


@dataclass(frozen=True)
class Episode:
    id: str                      # stable slug, e.g. "practical-ai-260"
    title: str = ""
    show: str = ""
    number: str = ""
    summary: str = ""
    url: str = ""
    hosts: tuple[str, ...] = ()
    guests: tuple[str, ...] = ()


@dataclass(frozen=True)
class Chapter:
    title: str
    start_s: float
    index: int = 0               # 1-based position in the published list
    sponsor: bool = False        # sponsor chapters hold ads, which are never transcribed

    def to_json(self) -> dict:
        """The chapter as every surface shows it (HTTP ``/chapters``, MCP ``list_chapters``)."""
        return {"index": self.index, "title": self.title, "start": format_time(self.start_s),
                "start_s": self.start_s, "sponsor": self.sponsor}


@dataclass(frozen=True)
class Marker:
    """An inline timestamp found in the text, in front of the word it attaches to."""

    word_offset: int             # words of the paragraph before the marker
    seconds: float
    note: bool = False           # from a transcriber's note ("[unintelligible 01:00:20]"): its
                                 # clock can be another take's, so it counts only where it fits


@dataclass(frozen=True)
class Paragraph:
    text: str                    # markers and markup stripped
    start_s: float | None = None # None until timing.assign_times runs
    end_s: float | None = None
    estimated: bool = True       # False only where a marker stands at the paragraph's start
    markers: tuple[Marker, ...] = ()
    line: int = 0                # 1-based line in the source file, for error messages
    break_before: bool = False   # a sponsor break was cut just before this paragraph
    break_s: float | None = None # the break marker's time, when the source gives one

    @property
    def words(self) -> int:
        return len(self.text.split())

    def time_at(self, word_offset: int) -> float:
        """Time of the word at ``word_offset``, interpolated across the paragraph.

        Inline markers inside the paragraph are exact, so interpolation runs through them.
        """
        start = self.start_s or 0.0
        end = self.end_s if self.end_s is not None else start
        n = max(self.words, 1)
        word = min(max(word_offset, 0), n)
        points = [(0, start)]
        for m in self.markers:
            if points[-1][0] < m.word_offset < n and points[-1][1] <= m.seconds <= end:
                points.append((m.word_offset, m.seconds))
        points.append((n, end))
        for (w0, t0), (w1, t1) in zip(points, points[1:]):
            if word <= w1:
                return t0 + (t1 - t0) * (word - w0) / max(w1 - w0, 1)
        return end


@dataclass(frozen=True)
class Turn:
    speaker: str
    paragraphs: tuple[Paragraph, ...]
    speaker_inferred: bool = False
    chapter: str | None = None   # chapter title, set by timing.assign_chapters

    @property
    def start_s(self) -> float | None:
        return self.paragraphs[0].start_s if self.paragraphs else None

    @property
    def text(self) -> str:
        return "\n\n".join(p.text for p in self.paragraphs)


@dataclass(frozen=True)
class Transcript:
    episode: Episode
    chapters: tuple[Chapter, ...] = ()
    turns: tuple[Turn, ...] = ()
    source: str = ""             # path(s) it was read from
    format: str = ""             # "markdown", "page", "plain", "vtt", "srt", "merged"

    def chapter(self, title: str) -> Chapter | None:
        return next((c for c in self.chapters if c.title == title), None)

    def to_json(self) -> dict:
        """The `rag transcript --json` contract."""
        ep = self.episode
        return {
            "episode": {
                "id": ep.id, "title": ep.title, "show": ep.show, "number": ep.number,
                "summary": ep.summary, "url": ep.url,
                "hosts": list(ep.hosts), "guests": list(ep.guests),
            },
            "source": self.source,
            "format": self.format,
            "chapters": [
                {"title": c.title, "start_s": c.start_s, "start": format_time(c.start_s),
                 "sponsor": c.sponsor}
                for c in self.chapters
            ],
            "turns": [
                {
                    "speaker": t.speaker,
                    "speaker_inferred": t.speaker_inferred,
                    "chapter": t.chapter,
                    "paragraphs": [
                        {"start_s": p.start_s,
                         "start": format_time(p.start_s) if p.start_s is not None else None,
                         "estimated": p.estimated, "text": p.text}
                        for p in t.paragraphs
                    ],
                }
                for t in self.turns
            ],
        }


@dataclass(frozen=True)
class Sentence:
    """One sentence of a chunk, with the speaker who said it and when it starts."""

    text: str
    speaker: str
    start_s: float
    estimated: bool = True
    context: bool = False        # True for a host question carried in as context, not new content


@dataclass(frozen=True)
class Chunk:
    id: str                      # stable: derived from episode, chapter and content
    episode: str
    chapter: str | None
    speakers: tuple[str, ...]
    start_s: float               # the time of its first word
    end_s: float
    sentences: tuple[Sentence, ...]
    show: str = ""               # the episode's show, title and page link (blank when unknown)
    episode_title: str = ""
    url: str = ""

    @property
    def text(self) -> str:
        """Speaker-attributed text, one line per change of speaker."""
        lines: list[str] = []
        speaker = None
        for s in self.sentences:
            if s.speaker != speaker:
                lines.append(f"{s.speaker}: {s.text}")
                speaker = s.speaker
            else:
                lines[-1] += " " + s.text
        return "\n".join(lines)

    @property
    def start(self) -> str:
        return format_time(self.start_s)

    def to_json(self) -> dict:
        return {
            "id": self.id, "episode": self.episode, "show": self.show, "episode_title": self.episode_title,
            "url": self.url, "chapter": self.chapter, "speakers": list(self.speakers), "start": self.start,
            "start_s": self.start_s, "end_s": self.end_s, "text": self.text,
        }

    @classmethod
    def from_json(cls, d: dict) -> "Chunk":
        return cls(
            id=d["id"], episode=d["episode"], chapter=d["chapter"],
            speakers=tuple(d["speakers"]), start_s=d["start_s"], end_s=d["end_s"],
            sentences=tuple(Sentence(**s) for s in d["sentences"]),
            show=d.get("show", ""), episode_title=d.get("episode_title", ""), url=d.get("url", ""),
        )

    def to_record(self) -> dict:
        """Full form for the index's chunks.jsonl (keeps sentence times)."""
        d = self.to_json()
        d["sentences"] = [
            {"text": s.text, "speaker": s.speaker, "start_s": s.start_s,
             "estimated": s.estimated, "context": s.context}
            for s in self.sentences
        ]
        return d


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float
    rank: int = 0
    matched: tuple[int, ...] = ()        # indexes of the chunk's sentences that matched best
    scores: dict = field(default_factory=dict, compare=False, hash=False)  # per-signal detail

    def to_json(self) -> dict:
        d = self.chunk.to_json()
        d["score"] = round(float(self.score), 6)
        return d


@dataclass(frozen=True)
class Citation:
    passage_id: str
    start_s: float
    chapter: str | None
    speaker: str
    quote: str
    episode: str = ""            # set where the index holds several episodes: the label names it
    estimated: bool = False      # the time is estimated (no marker at that sentence): shown as "~"

    @property
    def start(self) -> str:
        return format_time(self.start_s)

    @property
    def mark(self) -> str:
        """``~`` before an estimated time's label (as ``rag transcript`` marks them), else nothing."""
        return "~" if self.estimated else ""

    @property
    def label(self) -> str:
        """``[13:36]``, or ``[practical-ai-260 13:36]`` in an index of several episodes."""
        return f"[{self.episode} {self.start}]" if self.episode else f"[{self.start}]"

    def to_json(self) -> dict:
        d = {"passage_id": self.passage_id, "start": self.start, "start_s": self.start_s,
             "chapter": self.chapter, "speaker": self.speaker, "quote": self.quote,
             "estimated": self.estimated}
        if self.episode:
            d["episode"] = self.episode
        return d


@dataclass(frozen=True)
class Usage:
    """Tokens a chat model read and wrote for one answer, counted with its tiktoken encoding (what
    the context budget counts), and how many retrieved passages the prompt held."""

    prompt_tokens: int
    completion_tokens: int
    passages: int = 0

    def to_json(self) -> dict:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens, "passages": self.passages}


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    backend: str
    citations: tuple[Citation, ...] = ()
    hits: tuple[Hit, ...] = ()
    refused: bool = False
    standalone_question: str | None = None   # the condensed question, for follow-ups
    notes: tuple[str, ...] = ()              # e.g. "removed citation [99:00]: matches no passage"
    search_queries: tuple[str, ...] = ()     # the chat model's rewrites searched alongside it
    usage: Usage | None = None               # tokens a chat model was sent and wrote (None: none asked)

    def to_json(self) -> dict:
        d = {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "backend": self.backend,
            "citations": [c.to_json() for c in self.citations],
            "passages": [h.to_json() for h in self.hits],
        }
        if self.standalone_question and self.standalone_question != self.question:
            d["standalone_question"] = self.standalone_question
        if self.notes:
            d["notes"] = list(self.notes)
        if self.search_queries:
            d["search_queries"] = list(self.search_queries)
        if self.usage is not None:
            d["usage"] = self.usage.to_json()
        return d


# --- a question on its way through retrieval and the answer -------------------------------------


@dataclass(frozen=True)
class Filters:
    """Hard filters from the caller (``--show``, ``--episode``, ``--chapter``, ``--speaker``, a
    time range)."""

    chapter: str | None = None
    speaker: str | None = None
    start_s: float | None = None
    end_s: float | None = None
    show: str | None = None        # a show's name, folder or id prefix ("Practical AI", "practicalai")
    episode: str | None = None     # an episode id ("practical-ai-260")


@dataclass(frozen=True)
class Exchange:
    """An earlier turn of a conversation, as the next question reads it."""

    question: str                      # as it was asked
    answer: str = ""                   # the answer's text
    times: tuple[float, ...] = ()      # the times the answer cited, in order
    episodes: tuple[str, ...] = ()     # the episodes it cited, in an index of several (their labels)
    before: str = ""                   # the question it followed up on, as asked ("" if it stood alone)

    @classmethod
    def of(cls, answer: "Answer", before: str = "") -> "Exchange":
        """The turn an ``Answer`` was: its citations say where it was, without reading its text."""
        return cls(question=answer.question, answer=answer.text,
                   times=tuple(dict.fromkeys(c.start_s for c in answer.citations)),
                   episodes=tuple(dict.fromkeys(c.episode for c in answer.citations if c.episode)), before=before)


@dataclass(frozen=True)
class Question:
    """One question, built once where it comes in and read by every stage after.

    ``standalone`` is what is searched: the text itself, or, for a follow-up that leans on the last
    turn ("and why?"), the text with that turn's question. ``previous`` is the last turn, whether
    or not this question leans on it; ``follows_up`` says whether it does."""

    text: str
    standalone: str = ""
    previous: Exchange | None = None
    filters: Filters = Filters()
    k: int = 5
    across: bool = False               # asked of many episodes at once ("what have guests said ...")
    per_episode: int | None = None     # at most this many passages of one episode
    variants: tuple[str, ...] = ()     # a chat model's rewrites, searched alongside it
    depth: int = 0                     # passages an answerer reads when more than k (a chat model's budget)
    deadline: object = None            # chat_models.Deadline for every model call of this answer

    def __post_init__(self):
        if not self.standalone:
            object.__setattr__(self, "standalone", self.text)

    @property
    def follows_up(self) -> bool:
        return self.previous is not None and self.standalone != self.text


@dataclass(frozen=True)
class Signals:
    """What the refusal reads of a search, once for the question (not copied into every hit)."""

    coverage: float                    # share of the question's topic words the transcript uses
    local_coverage: float              # ... that the top three passages use
    semantic_coverage: float           # coverage that credits a word by its nearest transcript word
    answer: float | None               # the adapter's answer head: P(the answer is among the passages)
    absent: tuple[str, ...] = ()       # names the question uses that no passage does ("Sora")
    only_scope: bool = False           # it names where to look, nothing of what ("what came up near the end?")
    # A question judged on other words than were searched (a follow-up on a new topic): the best
    # passage and sentence-window similarity to its own words; None: the top passages' own scores.
    dense: float | None = None
    sentence: float | None = None
    distrust: float = 0.0              # how far the question prior puts its odds of being covered below the base rate


@dataclass(frozen=True)
class Evidence:
    """What retrieval found for a question: its passages, best first, and the refusal's signals
    (computed on first read: a search that only lists passages never pays for them)."""

    question: Question
    hits: tuple[Hit, ...]
    measure: Callable[[], Signals] = field(repr=False, compare=False, default=None)

    @cached_property
    def signals(self) -> Signals:
        return self.measure()

    @classmethod
    def of(cls, question: "Question | str", hits, signals: Signals) -> "Evidence":
        """Evidence found elsewhere (your own retrieval, a test): the hits and signals as given."""
        question = question if isinstance(question, Question) else Question(question)
        return cls(question, tuple(hits), lambda: signals)
