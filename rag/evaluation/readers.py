"""The listeners' corpus (``eval/readers/``): questions in a listener's words, one file per episode.

Each file ``eval/readers/<episode>.jsonl`` holds one episode's items, written by a language model
that read the whole transcript (``prompts/readers.md``, the brief). Three kinds of item:

    answerable      {"id", "episode", "question", "answerable": true, "type", "gold_quotes",
                     "answer", "speaker", ["timestamp"], ["needs_all"], ["style"]}
    unanswerable    {"id", "episode", "question", "answerable": false, "why_unanswerable",
                     "absent_terms", ["style"]}
    conversation    {"id", "episode", "type": "conversation", "turns": [{"question",
                     "gold_quotes", "answer", ["speaker"]}, ...]}

``validate_file(path, transcript_text)`` returns every problem (empty when the file is clean); the
corpus test runs it on every file against the transcript archive. Stdlib only, no model: it runs on
a whole transcript in milliseconds, so a writer can run it after every edit::

    python -m rag.evaluation.readers eval/readers/go-time-250.jsonl --transcript go-time-250.md
    python -m rag.evaluation.readers --all            # every file, transcripts from RAG_CATALOG
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..parsers.markdown import split_blocks
from ..query import time_asked

ANSWERABLE_TYPES = ("listener", "paraphrase", "factual", "why", "opinion", "time-scoped",
                    "multi-passage")
STYLES = ("typed", "spoken")          # a question written as people type or speak it
QUOTE_MIN_WORDS, QUOTE_MAX_WORDS = 6, 25
MAX_SHARED = 1 / 3                    # a "low-overlap" question shares at most this share ...
LOW_OVERLAP_SHARE = 0.5               # ... and at least this share of a file's questions are such
# What one episode's file must hold at least (the brief asks ~20 / ~5 / 2; these leave room for an
# item that was dropped because it could not be fixed).
MIN_ANSWERABLE, MIN_UNANSWERABLE, MIN_CONVERSATIONS, MIN_STYLED = 18, 4, 2, 3
MIN_OF_TYPE = {"paraphrase": 2, "time-scoped": 1, "multi-passage": 1}

STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before being
below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down
during each few for from further had hadn't has hasn't have haven't having he he'd he'll he's her
here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't it it's
its itself let's me more most mustn't my myself no nor not of off on once only or other ought our
ours ourselves out over own same shan't she she'd she'll she's should shouldn't so some such than
that that's the their theirs them themselves then there there's these they they'd they'll they're
they've this those through to too under until up very was wasn't we we'd we'll we're we've were
weren't what what's when when's where where's which while who who's whom why why's with won't would
wouldn't you you'd you'll you're you've your yours yourself yourselves also just like really kind
sort thing things get got go going gonna say said says tell told talk talked talking mean think
know yeah well one lot much many way even still actually something anything episode guest host
podcast show does did do according mention mentioned describe described
""".split())

# --- the transcript: paragraphs, their speakers and markers, normalised for matching ---------------

_LABEL = re.compile(r"^\s*(?:\\?\[[^\]\n]{0,20}\\?\]\s*)*\*{1,2}([^*\n]{1,60}?)"
                    r"(?:\s*:\s*\*{1,2}:?|\s*\*{1,2}\s*:)\s*")
_MARKER = re.compile(r"\\*\[\\*(\d{1,3}(?::\d{1,2}){1,3})(?:[.,]\d+)?\\*\]")
_BRACKETS = re.compile(r"\\?\[[^\]\n]*\\?\]")
_DASH = re.compile(r"\s*(?:--|[-\u2010-\u2015\u2212])\s*")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u02bc": "'", "`": "'", "\u00b4": "'", "\u201c": '"', "\u201d": '"',
                         "\u201e": '"', "\u201f": '"', "\u00ab": '"', "\u00bb": '"', "\u00a0": " "})
_WORD = re.compile(r"[a-z0-9][a-z0-9'+#.-]*[a-z0-9+#]|[a-z0-9]")
_NOT_SPEAKERS = {"break", "jingle", "outro", "intro", "sample", "song", "sound bite", "music", "ad",
                 "sponsor", "clip", "audio", "soundbite", "remix"}


def normalise(text: str) -> str:
    """Lower case, markers and markup gone, quotes/dashes/ellipses unified, whitespace collapsed."""
    t = _BRACKETS.sub(" ", text).replace("\\", "").replace("*", "").translate(_QUOTES)
    t = re.sub(r"\.{3,}|\u2026", "...", t)
    t = _DASH.sub(" - ", t)
    return re.sub(r"\s+", " ", t).strip().lower()


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text))


def content_words(text: str) -> set[str]:
    return {w for w in words(text) if w not in STOPWORDS and len(w) > 1 and not w.isdigit()}


def speaker_key(name: str) -> str:
    """"Mireille Reece, PsyD" -> "mireillereece"; compares names written with or without a title."""
    return re.sub(r"[^a-z]", "", re.sub(r"\(.*?\)", "", name).split(",")[0].lower())


@dataclass(frozen=True)
class Para:
    index: int
    speaker: str
    text: str                 # normalised, markers removed
    raw: str
    seconds: tuple[float, ...]   # inline markers inside it, in order
    time_before: float | None    # the last marker at or before its start


@dataclass
class Transcript:
    paragraphs: list[Para]
    hosts: set[str]               # speaker keys of the episode's host(s)
    full: str = ""                # every paragraph, normalised, joined by " ¶ "
    flat: str = ""                # the same joined by spaces (to tell a quote that spans two)
    vocabulary: set[str] = field(default_factory=set)

    def find(self, quote: str) -> list[tuple[Para, int]]:
        """Every (paragraph, offset) where the normalised quote occurs."""
        q = normalise(quote)
        found = []
        for p in self.paragraphs:
            start = 0
            while (i := p.text.find(q, start)) >= 0:
                found.append((p, i))
                start = i + 1
        return found


def _seconds(stamp: str) -> float:
    parts = [int(x) for x in stamp.split(":")][:3]
    s = 0
    for x in parts:
        s = s * 60 + x
    return float(s)


def parse_transcript(text: str) -> Transcript:
    """Paragraphs (blank-line blocks) with their speakers and times, read the way a writer sees them."""
    paras: list[Para] = []
    speaker, last_time, speakers = "", None, []
    for block in split_blocks(text):
        block = block.strip()
        if not block or block.startswith("#"):
            continue
        m = _LABEL.match(block)
        if m:
            speaker = m.group(1).strip().rstrip(":").strip()
            if speaker.lower() not in _NOT_SPEAKERS and speaker not in speakers:
                speakers.append(speaker)
            lead_times = re.match(r"^\s*(?:\\?\[[^\]\n]{0,20}\\?\]\s*)*", block).group(0)
            block = lead_times + block[m.end():]
        # Times at the very start of a block belong to it; a block of times alone only moves the clock.
        stamps = [_seconds(s) for s in _MARKER.findall(block)]
        body = normalise(block)
        before = last_time
        lead = re.match(r"^\s*(?:\\*\[\\*(\d{1,3}(?::\d{1,2}){1,3})(?:[.,]\d+)?\\*\]\s*)+", block)
        if lead:
            before = _seconds(_MARKER.findall(lead.group(0))[0])
        if stamps:
            last_time = stamps[-1]
        if not re.search(r"[a-z0-9]", body):
            continue
        paras.append(Para(len(paras), speaker, body, block, tuple(stamps), before))
    hosts = {speaker_key(s) for s in speakers[:1]}
    t = Transcript(paras, hosts)
    t.full = " \u00b6 ".join(p.text for p in paras)
    t.flat = " ".join(p.text for p in paras)
    t.vocabulary = set(_WORD.findall(t.full))
    return t


# --- the items --------------------------------------------------------------------------------------

def load(path: str | Path) -> list[dict]:
    """The items of one corpus file (blank lines skipped)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                out.append(json.loads(line))
    return out


def minute_asked(question: str) -> float | None:
    """The minute a time-scoped question names ("around minute 32", "an hour and ten minutes in"),
    read as rag reads it when it searches (``rag.query.time_asked``)."""
    seconds = time_asked(question)
    return None if seconds is None else seconds / 60


def _stamp_minutes(stamp) -> float | None:
    if isinstance(stamp, (int, float)):
        return float(stamp) / 60
    if isinstance(stamp, str) and re.fullmatch(r"\d{1,3}(:\d{1,2}){1,2}", stamp.strip()):
        return _seconds(stamp.strip()) / 60
    return None


class _Checker:
    def __init__(self, transcript: Transcript, episode: str):
        self.t, self.episode = transcript, episode
        self.problems: list[str] = []

    def say(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}")

    def quote(self, where: str, q, speakers: list[str] | None) -> Para | None:
        """Check one gold quote; the paragraph it lies in, or None."""
        if not isinstance(q, str) or not q.strip():
            self.say(where, f"empty or non-string quote {q!r}")
            return None
        n = len(normalise(q).split())
        if not QUOTE_MIN_WORDS <= n <= QUOTE_MAX_WORDS:
            self.say(where, f"quote has {n} words (want {QUOTE_MIN_WORDS}-{QUOTE_MAX_WORDS}): {q!r}")
        found = self.t.find(q)
        if not found:
            where_full = "it spans two paragraphs or a [..] marker" if normalise(q) in self.t.flat \
                else "not found in the transcript (copy it character for character)"
            self.say(where, f"quote {where_full}: {q!r}")
            return None
        if len(found) > 1:
            self.say(where, f"quote occurs {len(found)} times in the transcript (want once; "
                            f"lengthen it): {q!r}")
            return None
        para, offset = found[0]
        if speakers and not any(speaker_key(s) and speaker_key(s) == speaker_key(para.speaker)
                                for s in speakers):
            self.say(where, f"quote is spoken by {para.speaker!r}, not {', '.join(speakers)!r}: {q!r}")
        if speaker_key(para.speaker) in self.t.hosts and self._asks(para, offset + len(normalise(q))):
            self.say(where, f"quote is the host's question, not its answer: {q!r}")
        return para

    def _asks(self, para: Para, end: int) -> bool:
        """Does the quote (ending at ``end``) reach into the question that closes a host's turn?"""
        following = self.t.paragraphs[para.index + 1] if para.index + 1 < len(self.t.paragraphs) else None
        if following is not None and following.speaker == para.speaker:
            return False                       # the turn goes on: not the question handed over
        text = para.text.rstrip()
        if not text.endswith("?"):
            return False
        # The closing run of sentences that end in "?" is the question asked.
        sentences = list(re.finditer(r"[^.!?]+[.!?]+", text))
        start = len(text)
        for sent in reversed(sentences):
            if not sent.group(0).rstrip().endswith("?"):
                break
            start = sent.start()
        return end > start

    def answerable(self, where: str, it: dict, para_of: dict) -> None:
        typ = it.get("type")
        if typ not in ANSWERABLE_TYPES:
            self.say(where, f"type {typ!r} is not one of {', '.join(ANSWERABLE_TYPES)}")
        quotes = it.get("gold_quotes")
        if not isinstance(quotes, list) or not 1 <= len(quotes) <= 3:
            self.say(where, "gold_quotes must be a list of 1-3 quotes")
            return
        for key in ("answer", "speaker"):
            if not isinstance(it.get(key), (str, list)) or not it.get(key):
                self.say(where, f"missing {key!r}")
        speakers = it.get("speaker")
        speakers = re.split(r"\s*;\s*", speakers) if isinstance(speakers, str) else \
            [s for s in speakers if isinstance(s, str)] if isinstance(speakers, list) else None
        paras = [self.quote(where, q, speakers) for q in quotes]
        paras = [p for p in paras if p is not None]
        para_of[it.get("id")] = paras
        needs_all = it.get("needs_all", False)
        if typ == "multi-passage" and needs_all is not True:
            self.say(where, "a multi-passage question needs \"needs_all\": true")
        if needs_all is True:
            if len(quotes) < 2:
                self.say(where, "needs_all wants two or more quotes")
            elif len({p.index for p in paras}) < len(paras):
                self.say(where, "needs_all quotes must come from different paragraphs")
        if typ == "time-scoped":
            self.time_scoped(where, it, paras)

    def time_scoped(self, where: str, it: dict, paras: list[Para]) -> None:
        asked = minute_asked(it.get("question", ""))
        if asked is None:
            self.say(where, "a time-scoped question must name its minute (\"around the 20-minute mark\")")
            return
        stamp = _stamp_minutes(it.get("timestamp"))
        if stamp is None:
            self.say(where, "a time-scoped question needs \"timestamp\": \"MM:SS\" (the marker at or "
                            "before its quote)")
        for p in paras:
            times = [t for t in (p.time_before, *p.seconds[:1]) if t is not None]
            if not times:
                self.say(where, "no time marker at or before the quote: choose another passage")
            elif not any(abs(asked - t / 60) <= 1 for t in times):
                near = ", ".join(f"{int(t // 60)}:{int(t % 60):02d}" for t in times)
                self.say(where, f"the question names minute {asked:g}; the marker at or before the "
                                f"quote says {near} (want within one minute)")

    def unanswerable(self, where: str, it: dict) -> None:
        if not isinstance(it.get("why_unanswerable"), str) or not it["why_unanswerable"].strip():
            self.say(where, "missing 'why_unanswerable'")
        terms = it.get("absent_terms")
        if not isinstance(terms, list) or not 2 <= len(terms) <= 4 \
                or not all(isinstance(x, str) and x.strip() for x in terms):
            self.say(where, "absent_terms must list 2-4 words or phrases")
            return
        for term in terms:
            needle = " ".join(_WORD.findall(normalise(term)))
            if not needle:
                self.say(where, f"absent term {term!r} has no words")
            elif re.search(r"(?<![a-z0-9])" + re.escape(needle) + r"(?![a-z0-9])", self.t.full):
                self.say(where, f"absent term {term!r} does occur in the transcript")
        if it.get("gold_quotes"):
            self.say(where, "an unanswerable question has no gold_quotes")

    def conversation(self, where: str, it: dict) -> None:
        turns = it.get("turns")
        if not isinstance(turns, list) or len(turns) < 2:
            self.say(where, "a conversation needs \"turns\": two or more {question, gold_quotes, answer}")
            return
        earlier: set[str] = set()
        for n, turn in enumerate(turns, 1):
            w = f"{where} turn {n}"
            if not isinstance(turn, dict) or not isinstance(turn.get("question"), str) \
                    or not turn["question"].strip():
                self.say(w, "needs a question")
                continue
            if not isinstance(turn.get("answer"), str) or not turn["answer"].strip():
                self.say(w, "needs an answer")
            quotes = turn.get("gold_quotes")
            if not isinstance(quotes, list) or not 1 <= len(quotes) <= 3:
                self.say(w, "gold_quotes must be a list of 1-3 quotes")
                continue
            spk = turn.get("speaker")
            for q in quotes:
                if isinstance(q, str) and normalise(q) in earlier:
                    self.say(w, "repeats an earlier turn's quote (each turn is answered by words of its own)")
                self.quote(w, q, [spk] if isinstance(spk, str) and spk else None)
            earlier |= {normalise(q) for q in quotes if isinstance(q, str)}


def overlap(question: str, paragraph: str) -> float:
    """The share of the question's content words that the paragraph uses."""
    q = content_words(question)
    if not q:
        return 0.0
    return len(q & content_words(paragraph)) / len(q)


def validate_items(items: list[dict], transcript_text: str, episode: str, *,
                   complete: bool = True) -> list[str]:
    """Every problem of one episode's items (empty when clean). ``complete``: also the file's
    minimums (counts, types, styles, the share of low-overlap questions)."""
    t = parse_transcript(transcript_text)
    c = _Checker(t, episode)
    ids = Counter(it.get("id") for it in items if isinstance(it, dict))
    for i, n in ids.items():
        if n > 1:
            c.say(f"id {i!r}", f"used {n} times")
    kinds: Counter = Counter()
    types: Counter = Counter()
    styled = 0
    para_of: dict = {}
    for n, it in enumerate(items, 1):
        if not isinstance(it, dict):
            c.say(f"line {n}", "not a JSON object")
            continue
        where = f"line {n} ({it.get('id')})"
        if not isinstance(it.get("id"), str) or not it["id"]:
            c.say(where, "missing 'id'")
        if it.get("episode") != episode:
            c.say(where, f"\"episode\" must be {episode!r}")
        if it.get("style") is not None:
            if it["style"] not in STYLES:
                c.say(where, f"style {it['style']!r} is not one of {', '.join(STYLES)}")
            else:
                styled += 1
        if it.get("type") == "conversation" or "turns" in it:
            kinds["conversation"] += 1
            c.conversation(where, it)
            continue
        if not isinstance(it.get("question"), str) or not it["question"].strip():
            c.say(where, "missing 'question'")
            continue
        if it.get("answerable") is True:
            kinds["answerable"] += 1
            types[it.get("type")] += 1
            c.answerable(where, it, para_of)
        elif it.get("answerable") is False:
            kinds["unanswerable"] += 1
            c.unanswerable(where, it)
        else:
            c.say(where, "\"answerable\" must be true or false (or give \"turns\" for a conversation)")
    if complete:
        for kind, least in (("answerable", MIN_ANSWERABLE), ("unanswerable", MIN_UNANSWERABLE),
                            ("conversation", MIN_CONVERSATIONS)):
            if kinds[kind] < least:
                c.say("file", f"{kinds[kind]} {kind} items (want at least {least})")
        timed = any(p.seconds or p.time_before is not None for p in t.paragraphs)
        for typ, least in MIN_OF_TYPE.items():
            if typ == "time-scoped" and not timed:
                continue                    # a transcript without time markers cannot have them
            if types[typ] < least:
                c.say("file", f"{types[typ]} {typ!r} questions (want at least {least})")
        if styled < MIN_STYLED:
            c.say("file", f"{styled} questions marked \"style\" typed/spoken (want at least {MIN_STYLED})")
        answerable = [it for it in items if isinstance(it, dict) and it.get("answerable") is True]
        low = [it for it in answerable
               if para_of.get(it.get("id")) and max(overlap(it["question"], p.text)
                                                   for p in para_of[it["id"]]) <= MAX_SHARED]
        if answerable and len(low) < LOW_OVERLAP_SHARE * len(answerable):
            worst = sorted((max(overlap(it["question"], p.text) for p in para_of[it["id"]]), it["id"])
                           for it in answerable if para_of.get(it.get("id")))[::-1][:5]
            c.say("file", f"only {len(low)} of {len(answerable)} answerable questions share at most a "
                          f"third of their content words with the answering paragraph (want half); "
                          f"most overlapping: " + ", ".join(f"{i} {s:.2f}" for s, i in worst))
    return c.problems


def as_eval_items(items: Iterable[dict], *, longer: bool = False) -> list[dict]:
    """The items in ``rag eval``'s format (eval/README.md): answerable and unanswerable questions as
    they are, a conversation as an item for its last turn whose history is the turns before it: a
    ``followup`` (a second turn). ``longer``: a conversation of three turns too, as a ``followup-3``
    item (``bench/retrievers.py``); without it they are left out, so that what was fitted and
    recorded on the corpus before they were written reads the same items."""
    out = []
    for it in items:
        base = {"id": it["id"], "episode": it.get("episode"), "style": it.get("style")}
        if it.get("turns"):
            turns = it["turns"]
            if len(turns) > 2 and not longer:
                continue
            first, last = turns[0], turns[-1]
            out.append({**base, "type": "followup" if len(turns) == 2 else f"followup-{len(turns)}",
                        "question": last["question"], "answerable": True,
                        "gold_quotes": list(last["gold_quotes"]), "answer": last.get("answer", ""),
                        "history": [t["question"] for t in turns[:-1]],
                        "history_gold_quotes": list(first["gold_quotes"])})
        elif it.get("answerable"):
            out.append({**base, "type": it.get("type", "listener"), "question": it["question"],
                        "answerable": True, "gold_quotes": list(it["gold_quotes"]),
                        "needs_all": bool(it.get("needs_all")), "answer": it.get("answer", "")})
        else:
            out.append({**base, "type": "unanswerable", "question": it["question"], "answerable": False,
                        "gold_quotes": [], "answer": ""})
    return out


def validate_file(path: str | Path, transcript_text: str, *, complete: bool = True) -> list[str]:
    path = Path(path)
    try:
        items = load(path)
    except (OSError, json.JSONDecodeError) as e:
        return [f"{path}: cannot be read as JSON Lines: {e}"]
    return validate_items(items, transcript_text, path.stem, complete=complete)


# --- the corpus -------------------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parents[2] / "eval" / "readers"


def corpus_files(folder: Path = CORPUS) -> list[Path]:
    return sorted(folder.glob("*.jsonl"))


def splits(folder: Path = CORPUS) -> dict:
    return json.loads((folder / "splits.json").read_text(encoding="utf-8"))


def split_of(episode: str, plan: dict) -> str | None:
    for name in ("train", "validation", "test", "held_out_shows"):
        if episode in plan.get(name, ()):
            return name
    return None


def transcripts(wanted: Iterable[str] | None, archive: Path) -> Iterator[tuple[str, str]]:
    """(episode id, Markdown) for the wanted episodes (None: all) of an archive or a folder."""
    from ..catalog.sources import documents, expand

    wanted = None if wanted is None else set(wanted)
    for path, in_folder in expand([archive]):
        if path.suffix == ".md" and wanted is not None and path.stem not in wanted:
            continue
        for doc in documents(path, in_folder=in_folder):
            stem = Path(doc.name.rsplit(":", 1)[-1]).stem
            if stem.upper() in ("ABOUT", "README"):
                continue
            if wanted is None or stem in wanted:
                yield stem, doc.text


def excluded_episodes(root: Path = CORPUS.parents[1]) -> set[str]:
    """Every episode another question set uses, so never in this corpus: #260 (eval/questions.jsonl),
    eval/episodes/<id>/, and eval/catalog_questions.jsonl's gold episodes. Files that are not there
    (an installed wheel has no eval/) add nothing."""
    out = {"practical-ai-260"}
    episodes = root / "eval" / "episodes"
    if episodes.is_dir():
        out |= {p.name for p in episodes.iterdir() if p.is_dir()}
    catalog = root / "eval" / "catalog_questions.jsonl"
    if catalog.is_file():
        for item in load(catalog):
            out.update(item.get("gold_episodes") or ())
            if isinstance(item.get("episode"), str):
                out.add(item["episode"])
    return out


def never_trained(root: Path = CORPUS.parents[1]) -> tuple[set[str], tuple[str, ...]]:
    """(episodes, show prefixes) that no training may read: every other question set's episodes,
    this corpus's validation, test and held-out-show episodes, and the held-out shows whole."""
    out = excluded_episodes(root)
    folder = root / "eval" / "readers"
    if not (folder / "splits.json").is_file():
        return out, ()
    plan = splits(folder)
    for name in ("validation", "test", "held_out_shows"):
        out.update(plan.get(name, ()))
    return out, tuple(plan.get("held_out_show_prefixes", ()))


def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.evaluation.readers",
                                 description="Check listeners' question files against their transcripts.")
    ap.add_argument("files", nargs="*", type=Path, help="corpus files (eval/readers/<episode>.jsonl)")
    ap.add_argument("--transcript", type=Path, help="the episode's Markdown (one file checked)")
    ap.add_argument("--all", action="store_true", help="every file in eval/readers/")
    ap.add_argument("--catalog", type=Path, help="archive or folder of transcripts (default RAG_CATALOG)")
    args = ap.parse_args(argv)
    files = corpus_files() if args.all else args.files
    if not files:
        ap.error("name a file, or --all")
    if args.transcript:
        if len(files) != 1:
            ap.error("--transcript checks exactly one file")
        texts = {files[0].stem: args.transcript.read_text(encoding="utf-8")}
    else:
        from ..config import catalog_path
        texts = dict(transcripts({f.stem for f in files}, args.catalog or catalog_path()))
    bad = 0
    for f in files:
        if f.stem not in texts:
            print(f"{f}: no transcript {f.stem}.md found", file=sys.stderr)
            bad += 1
            continue
        problems = validate_file(f, texts[f.stem])
        try:
            items = [it for it in load(f) if isinstance(it, dict)]
        except (OSError, json.JSONDecodeError):
            items = []                      # validate_file has said why
        kinds = Counter("conversation" if "turns" in it else
                        "answerable" if it.get("answerable") else "unanswerable" for it in items)
        status = "ok" if not problems else f"{len(problems)} problems"
        print(f"{f.name}: {kinds['answerable']} answerable, {kinds['unanswerable']} unanswerable, "
              f"{kinds['conversation']} conversations: {status}")
        for p in problems:
            print(f"  {p}")
        bad += bool(problems)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(_main())
