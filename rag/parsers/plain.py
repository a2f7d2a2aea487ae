"""Speaker-labelled plain text: what transcription services export and what people type.

    Jane Doe  0:00                         Otter: the speaker and the time on a line, the words below
    Jane Doe (00:01:05):                   Rev: the same with the time in brackets
    [00:01:05] Jane Doe: Why Rust?         Descript, Zoom and others: time, speaker and words on a line
    [01:05.000 --> 01:09.500] Why Rust?    Whisper (``SPEAKER_00: `` after the times when diarized)
    Jane Doe: Why did you pick Rust?       a script or a hand-typed transcript: no times at all

A label starts a turn; the lines under it, up to the next label, are its paragraphs (a blank line
between two paragraphs). Where labels carry times, a label without one is words; without times, a
name must label two lines or more. A Markdown heading before the talk is the title. A label's time
is a marker at the turn's first word, so the timing stage treats it as it treats ``\\[06:01\\]`` in
Changelog Markdown. Text is only read this way when labels repeat (``looks_plain``): one
"Note: ..." line in prose is no transcript.
"""

from __future__ import annotations

import re
from collections import Counter

from ..errors import TranscriptError
from ..types import Episode, Marker, Paragraph, Transcript, Turn
from .markdown import co_hosts, episode_from_source, parse_marker_time, split_markers

_TIME = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
# A name: one to four words, the first starting with a capital, the others with a capital, a
# digit or a particle ("Speaker 1", "Dr. Jane O'Neil", "JANE DOE", "Ana de Souza"), at most 40
# characters.
_NAME = (r"[A-Z\u00c0-\u024f][\w.'\u2019-]*"
         r"(?: (?:[A-Z\u00c0-\u024f0-9][\w.'\u2019-]*|de|van|von|da|di|le|la)){0,3}")
_LABELS = (
    # [00:01.000 --> 00:04.000] SPEAKER_00: words   |   [00:01.000 --> 00:04.000]  words   (Whisper)
    re.compile(rf"^\[(?P<time>{_TIME})\s*-->\s*{_TIME}\]\s*(?:(?P<name>{_NAME})\s*:\s+)?(?P<text>.*)$"),
    # Jane Doe  0:00   |   Jane Doe 1:02:03   (Otter: the words follow on the next lines)
    re.compile(rf"^(?P<name>{_NAME})\s+(?P<time>{_TIME})\s*$"),
    # Jane Doe (00:01:05):   |   Jane Doe [01:05]: words
    re.compile(rf"^(?P<name>{_NAME})\s*[\[(](?P<time>{_TIME})[\])]\s*:?\s*(?P<text>.*)$"),
    # [00:01:05] Jane Doe: words   |   00:01:05 - Jane Doe: words   |   (01:05) Jane Doe:
    re.compile(rf"^[\[(]?(?P<time>{_TIME})[\])]?\s*[-\u2013|]?\s*(?P<name>{_NAME})\s*:\s*(?P<text>.*)$"),
    # Jane Doe: words   |   JANE DOE:
    re.compile(rf"^(?P<name>{_NAME})\s*:\s*(?P<text>.*)$"),
)
_MAX_NAME = 40
UNKNOWN = "Unknown"             # a line with a time and no name: the speaker is not known


def label(line: str) -> tuple[str, float | None, str] | None:
    """``(speaker, seconds or None, words after the label)`` when ``line`` opens with a speaker's
    label, else None."""
    line = line.strip()
    for pattern in _LABELS:
        m = pattern.match(line)
        if m and len(m.group("name") or "") <= _MAX_NAME:
            time = m.groupdict().get("time")
            return (m.group("name") or UNKNOWN, parse_marker_time(time) if time else None,
                    m.groupdict().get("text") or "")
    return None


def looks_plain(text: str) -> bool:
    """Do speaker labels start lines as in a transcript: labels with times, some name labelling two
    lines or more; or two names that each label two lines or more (a dialogue, however long its
    turns); or one such name on at least one line in five."""
    lines = [line for line in text.splitlines() if line.strip()][:2000]
    found = [found for found in map(label, lines) if found is not None]
    repeated = [n for n, count in Counter(name for name, _, _ in found).items() if count >= 2]
    if not repeated:
        return False
    timed = sum(seconds is not None for _, seconds, _ in found) >= 2
    return timed or len(repeated) >= 2 or len(found) * 5 >= len(lines)


def parse_plain(text: str, source: str = "") -> Transcript:
    """Parse speaker-labelled text into an untimed Transcript (markers where labels give times)."""
    episode_id, number = episode_from_source(source)
    turns: list[Turn] = []
    speakers: list[str] = []
    speaker: str | None = None
    paragraphs: list[Paragraph] = []
    lines: list[str] = []
    start_line, pending_time = 0, None

    def close_paragraph():
        nonlocal lines, pending_time
        if lines:
            words, markers = split_markers(" ".join(lines))
            if pending_time is not None and not any(m.word_offset == 0 for m in markers):
                markers = (Marker(0, pending_time),) + markers
            if words:
                paragraphs.append(Paragraph(words, markers=markers, line=start_line))
                pending_time = None
        lines = []

    def close_turn():
        nonlocal paragraphs
        close_paragraph()
        if speaker is not None and paragraphs:
            turns.append(Turn(speaker, tuple(paragraphs), speaker_inferred=speaker == UNKNOWN))
        paragraphs = []

    # Where the labels carry times (Otter, Rev, Descript), a line whose label has none is words
    # ("Python: it just worked."), not a new speaker.
    # Without times, a name labels a turn only where it labels two or more ("JOHN: ..." is a
    # speaker, "Python: it was never an option." inside his turn is words).
    rows = text.splitlines()
    labels = [label(raw) for raw in rows]
    labelled = [found for found in labels if found is not None]
    timed = sum(seconds is not None for _, seconds, _ in labelled) * 2 > len(labelled)
    names = Counter(name for name, _, _ in labelled)
    title = ""
    for number_, (raw, found) in enumerate(zip(rows, labels), 1):
        if not raw.strip():
            close_paragraph()
            continue
        if raw.startswith("#") and speaker is None and not title:
            title = raw.lstrip("#").strip()      # a Markdown heading before the talk: the title
            continue
        if found is not None and (found[1] is None if timed else names[found[0]] < 2):
            found = None
        if found is not None:
            name, seconds, rest = found
            if name == speaker:
                close_paragraph()   # the same voice again (Whisper's lines): a new paragraph of its turn
            else:
                close_turn()
            speaker = name
            if name not in speakers and name != UNKNOWN:
                speakers.append(name)
            pending_time = seconds
            if rest.strip():
                start_line, lines = number_, [rest.strip()]
            continue
        if speaker is None:
            speaker = UNKNOWN        # words before the first label: a preamble, kept as spoken
        if not lines:
            start_line = number_
        lines.append(raw.strip())
    close_turn()
    if not turns:
        raise TranscriptError("no transcript paragraphs found; expected lines such as "
                              "'Jane Doe: text' or 'Jane Doe (00:01:05):' followed by text", source or None)
    hosts = speakers[:1] + co_hosts(turns[:2], speakers[1:])
    episode = Episode(id=episode_id, title=title, number=number, hosts=tuple(hosts),
                      guests=tuple(s for s in speakers if s not in hosts))
    return Transcript(episode=episode, turns=tuple(turns), source=source, format="plain")
