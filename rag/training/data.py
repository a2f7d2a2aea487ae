"""Training pairs mined from the transcript catalog: a question someone asks, the answer that follows.

A Changelog interview is a sequence of turns. Whenever a turn ends in a question (its last
sentences hold a ``?``) and the next turn is another speaker's reply of at least ``MIN_ANSWER_WORDS``
words, that is a free (question, answer) pair, and the rest of the same episode supplies the hard
negatives. Asker and replier must differ and at least one side must be the episode's host/guest
pattern (a host asks, or a guest replies), so panel banter between two guests is left out.

Noise filtered: banter and greetings (questions under ``MIN_QUESTION_WORDS`` words or in the opening
turns), one-word and "Yeah." replies, laughter-only lines, sponsor reads (turns just after a break
marker, turns that mention sponsors), duplicates (same normalised question or answer opening).

Every episode that a question set uses is excluded (``HELD_OUT_EPISODES``, the one list), and the
rest is split into train and validation **by episode**: an episode never has pairs on both sides.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..chunking import split_sentences
from ..parsers.markdown import parse_markdown

# The episodes the shipped adapter (rag/models/podcast-minilm/) was held out from when it was trained.
SHIPPED_HELD_OUT = frozenset({"practical-ai-260", "practical-ai-84"})


def _never_trained() -> tuple[frozenset[str], tuple[str, ...]]:
    from ..evaluation.readers import never_trained

    episodes, shows = never_trained()
    return frozenset(episodes | SHIPPED_HELD_OUT), shows


# Episodes any question set uses (eval/questions.jsonl, eval/episodes/*, the catalog questions, the
# listeners' corpus outside its train split) and whole held-out shows: never trained on. The one
# list, read from the question sets; tests/test_training.py checks every set's episodes are in it.
HELD_OUT_EPISODES, HELD_OUT_SHOWS = _never_trained()


def held_out(episode: str) -> bool:
    """Is this episode one no training may read?"""
    return episode in HELD_OUT_EPISODES or any(episode.startswith(show + "-") for show in HELD_OUT_SHOWS)

MIN_ANSWER_WORDS = 25
MIN_QUESTION_WORDS = 5
QUESTION_MAX_WORDS = 60      # the asking turn's last sentences, up to this many words
ANSWER_MAX_WORDS = 160       # a passage: the reply's opening (the model reads 256 pieces at most)
TARGET_SENTENCES = 3         # the sentence-level target: the reply's first sentences
VALIDATION_SHARE = 10        # one episode in 10 goes to validation (by a hash of its id)
OPENING_TURNS = 3            # greetings and introductions

_SPONSOR = re.compile(r"\b(sponsor(ed)?|brought to you by|promo code|fastly|linode|rollbar|"
                      r"changelog\+\+|sentry|square|this episode is)\b", re.I)
_LAUGHTER = re.compile(r"^\W*(\[?(laughs?|laughter|chuckles?|crosstalk)\]?\W*)+$", re.I)
_FILLER_START = re.compile(r"^(yeah|yes|no|right|sure|totally|absolutely|exactly|okay|ok|so|well|"
                           r"um|uh|oh|hm+|mm+)[,.!]*\s+", re.I)


@dataclass(frozen=True)
class Pair:
    episode: str            # e.g. "practical-ai-100"
    show: str               # the archive folder, e.g. "practicalai"
    question: str           # the asking turn's closing sentences
    asker: str
    answer: str             # the reply's opening, up to ANSWER_MAX_WORDS words
    target: str             # the reply's first sentences (the sentence-level target)
    speaker: str            # who answers
    neighbour: str          # the passage right after the answer (a hard negative)
    position: int           # turn number of the reply in its episode

    def passage(self) -> str:
        """The answer as the index holds it: "Speaker: text"."""
        return f"{self.speaker}: {self.answer}"

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, d: dict) -> "Pair":
        return cls(**d)


def split_of(episode: str) -> str:
    """"validation" or "train", decided by the episode alone (stable across runs and machines)."""
    h = int(hashlib.sha256(episode.encode()).hexdigest()[:8], 16)
    return "validation" if h % VALIDATION_SHARE == 0 else "train"


def _words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit])


def _question_part(text: str) -> str | None:
    """The closing sentences of a turn when they ask something, else None."""
    sentences = split_sentences(text.replace("\n", " "))
    if not sentences or not any("?" in s for s in sentences[-2:]):
        return None
    picked: list[str] = []
    for s in reversed(sentences):
        if picked and sum(len(p.split()) for p in picked) + len(s.split()) > QUESTION_MAX_WORDS:
            break
        picked.insert(0, s)
    question = " ".join(picked)
    return question if len(question.split()) >= MIN_QUESTION_WORDS else None


def _clean_reply(text: str) -> str:
    text = " ".join(text.split())
    for _ in range(3):  # "Yeah, so, well..." -> the content
        text = _FILLER_START.sub("", text, count=1)
    return text[:1].upper() + text[1:] if text else text


def mine_transcript(text: str, source: str, show: str) -> list[Pair]:
    """The (question, answer) pairs of one Markdown transcript."""
    transcript = parse_markdown(text, source)
    episode = transcript.episode
    hosts = set(episode.hosts)
    turns = transcript.turns
    pairs: list[Pair] = []
    for i in range(OPENING_TURNS, len(turns) - 1):
        ask, reply = turns[i], turns[i + 1]
        if ask.speaker == reply.speaker or (ask.speaker not in hosts and reply.speaker in hosts):
            continue
        if any(p.break_before for p in reply.paragraphs) or _SPONSOR.search(reply.text[:300]):
            continue
        question = _question_part(ask.text)
        if question is None:
            continue
        body = _clean_reply(reply.text)
        if len(body.split()) < MIN_ANSWER_WORDS or _LAUGHTER.match(body):
            continue
        target = " ".join(split_sentences(body)[:TARGET_SENTENCES])
        after = " ".join(t.text for t in turns[i + 2:i + 4])
        pairs.append(Pair(episode=episode.id, show=show, question=question, asker=ask.speaker,
                          answer=_words(body, ANSWER_MAX_WORDS), target=_words(target, 80),
                          speaker=reply.speaker, neighbour=_words(" ".join(after.split()), 120),
                          position=i + 1))
    return pairs


def _key(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower())[:12])


def deduplicate(pairs: list[Pair]) -> list[Pair]:
    seen_q: set[tuple[str, str]] = set()
    seen_a: set[str] = set()
    out = []
    for p in pairs:
        q, a = (p.episode, _key(p.question)), _key(p.answer)
        if q in seen_q or a in seen_a:
            continue
        seen_q.add(q)
        seen_a.add(a)
        out.append(p)
    return out


def iter_transcripts(source: Path) -> Iterator[tuple[str, str, str]]:
    """(show folder, name, text) for each Markdown transcript of the archive or folder, in its order
    (``catalog.sources``: members streamed, documentation such as ``ABOUT.md`` left out)."""
    from ..catalog.sources import documents, expand

    for path, _ in expand([source]):
        for doc in documents(path, in_folder=True):
            member = doc.name.rsplit(":", 1)[-1] if ":" in doc.name else doc.name
            if member.endswith(".md"):
                yield Path(member).parent.name, doc.name, doc.text


def mine(source: Path, progress=None, skipped: list | None = None) -> dict[str, list[Pair]]:
    """Mine every transcript of ``source`` (the archive, or a folder): {"train": [...], "validation": [...]}.
    ``skipped`` collects the names of transcripts that could not be parsed."""
    reader = iter_transcripts(Path(source))
    splits: dict[str, list[Pair]] = {"train": [], "validation": []}
    for n, (show, name, text) in enumerate(reader, 1):
        stem = Path(name).stem
        # Held-out episodes never reach training; one the benchmark may read (never trained on by
        # hash) stays in validation, so that benchmark does not move as question sets grow.
        if stem in SHIPPED_HELD_OUT or held_out(stem) and split_of(stem) == "train":
            continue
        try:
            pairs = mine_transcript(text, name, show)
        except Exception:  # noqa: BLE001 - one malformed transcript must not stop the mining
            if skipped is not None:
                skipped.append(name)
            continue
        if pairs:
            splits[split_of(pairs[0].episode)].extend(pairs)
        if progress:
            progress(n)
    return {k: deduplicate(v) for k, v in splits.items()}


def counts_by_show(splits: dict[str, list[Pair]]) -> list[tuple[str, int, int, int, int]]:
    """(show, train episodes, train pairs, validation episodes, validation pairs), by show."""
    rows = []
    shows = sorted({p.show for v in splits.values() for p in v})
    for show in shows:
        tr = [p for p in splits["train"] if p.show == show]
        va = [p for p in splits["validation"] if p.show == show]
        rows.append((show, len({p.episode for p in tr}), len(tr), len({p.episode for p in va}), len(va)))
    return rows


def episode_counts(pairs: list[Pair]) -> Counter:
    return Counter(p.episode for p in pairs)
