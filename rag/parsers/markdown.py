"""The Changelog Markdown transcript format (thechangelog/transcripts).

    **Chris Benson:** Welcome to another episode ...      a labelled paragraph starts a turn
    So my motivation for going ...                        an unlabelled one continues it
    \\[06:01\\] So I've been very interested ...           inline markers, anywhere in a paragraph
    **Break**: \\[12:16\\]                                 a sponsor break was cut here

The catalog is hand-edited and inconsistent, so the parser is lenient: odd labels, unescaped or
frame-suffixed timestamps and stray markup are tolerated; it only fails when no paragraph of
transcript text is left.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Sequence

from ..errors import TranscriptError
from ..types import Episode, Marker, Paragraph, Transcript, Turn, replace

# \[00:06:01.01\], \[06:01\], [1:03:50], \[00:44:03:20\] (the last part is a frame count).
MARKER_RE = re.compile(r"\\*\[\\*(\d{1,3}(?::\d{1,2}){1,3}(?:[.,]\d+)?)\\*\]")
# **Chris Benson:**, *Marko Anastasov:** (a typo in the wild), optionally behind leading markers.
SPEAKER_RE = re.compile(r"^((?:\s*\\*\[[^\]\n]{0,20}\]\s*)*)\*{1,2}([^*\n]{1,60}?)\s*:\s*\*{1,2}:?\s*")
# **Jingle**:, **Break**:, **Sound bite:**  — a bold word with the colon outside the bold.
LABEL_RE = re.compile(r"^\*{1,2}([^*\n]{1,40}?)\*{1,2}\s*:\s*")
# A time inside a transcriber's note, "\[unintelligible 01:00:20.10\]": the clock at that word.
# The note stays in the text (quotes keep the transcript's characters); its time is a marker.
NOTE_TIME_RE = re.compile(r"\\?\[[a-z]{3,20} (\d{1,2}(?::\d{1,2}){1,2}(?:[.,]\d+)?)\\?\]")
LINK_RE = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
HEADING_RE = re.compile(r"^#{1,6}\s*")
ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~'\"])")
EMPHASIS_RE = re.compile(r"(\*\*|__|(?<![\w*])\*(?!\s)|(?<=\S)\*(?![\w*])|`)")
# Labels that name a segment, not a person: their text is kept but never counted as a speaker.
NON_SPEAKER_LABELS = {
    "break", "jingle", "outro", "intro", "sample", "song", "remix", "audio", "sound bite",
    "soundbite", "clip", "music", "ad", "sponsor", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday",
}
# Break: \[36:45\] to \[38:22\]  — the same labels without the bold, before a time.
PLAIN_LABEL_RE = re.compile(
    r"^(%s)\s*:\s*(?=\\?\[)" % "|".join(sorted(NON_SPEAKER_LABELS, key=len, reverse=True)), re.I)
UNKNOWN_SPEAKER = "Unknown"
# What stands between the two times of a range, "\\[49:03\\] to \\[49:31\\]".
RANGE_WORDS = {"", "to", "-", "–", "—"}


def parse_marker_time(text: str) -> float | None:
    """``06:01`` -> 361.0, ``00:06:01.01`` -> 361.01, ``00:44:03:20`` -> 2643.67 (frames at 30/s).

    Returns None for impossible values (seconds >= 60), which the parser then drops.
    """
    frac = 0.0
    if "." in text or "," in text:
        text, _, digits = text.replace(",", ".").partition(".")
        frac = float("0." + digits)
    parts = [int(p) for p in text.split(":")]
    if len(parts) == 4:                      # HH:MM:SS:FF timecode
        frac, parts = parts[3] / 30.0, parts[:3]
    if len(parts) == 2:
        parts = [0] + parts
    hours, minutes, seconds = parts
    if seconds >= 60 or (hours and minutes >= 60):
        return None
    return hours * 3600 + minutes * 60 + seconds + frac


def clean_markup(text: str) -> str:
    """Strip Markdown and HTML escapes, keeping the words: links keep their text."""
    # Each substitution runs only when its trigger character is present: the catalog has
    # ~500k paragraphs, and most need none of them.
    if "](" in text:
        text = LINK_RE.sub(r"\1", text)
    if "\\" in text:
        text = ESCAPE_RE.sub(r"\1", text)
    if "*" in text or "`" in text:
        text = EMPHASIS_RE.sub("", text)
    if "&" in text:
        text = html.unescape(text)
    return " ".join(text.split())


def split_markers(raw: str) -> tuple[str, tuple[Marker, ...]]:
    """Remove inline markers from ``raw``; each becomes a Marker at the word it stands before.

    A transcriber's note with a time (``[unintelligible 01:00:20.10]``) stays in the words and
    gives a Marker at its first word too.
    """
    words: list[str] = []
    markers: list[Marker] = []
    pos = 0
    found = [(m.start(), m, True) for m in MARKER_RE.finditer(raw)]
    if "[" in raw:
        found += [(m.start(), m, False) for m in NOTE_TIME_RE.finditer(raw)]
        found.sort(key=lambda f: f[0])
    for _, m, removed in found:
        if m.start() < pos:
            continue                          # inside one already taken
        words.extend(clean_markup(raw[pos:m.start()]).split())
        seconds = parse_marker_time(m.group(1))
        if seconds is not None:
            markers.append(Marker(len(words), seconds, note=not removed))
        if not removed:
            words.extend(clean_markup(m.group(0)).split())
        pos = m.end()
    words.extend(clean_markup(raw[pos:]).split())
    # A marker after the last word (rare) attaches to the end of the paragraph.
    return " ".join(words), tuple(markers)


def interlude(label: str | None, markers: tuple[Marker, ...], speakers: Sequence[str]):
    """What a block of times without words says about the clock: ``(pause, resume)``.

    ``pause`` is the break's time for the next paragraph's ``break_s`` (False: no pause; None: a
    break without a time); ``resume`` is when the next words start (None: not given).

        **Break:** \\[12:16\\]                  a sponsor break: the talk pauses at 12:16
        **Jingle:** \\[49:03\\] to \\[49:31\\]     music from 49:03; the talk resumes at 49:31
        **Outro:** \\[1:01:50\\]                the talk stops at 1:01:50
        \\[08:47\\]  or  **Mat Ryer:** \\[08:47\\]    the next words start at 08:47
    """
    times = [m.seconds for m in markers]
    resume = times[-1] if len(times) > 1 else None
    if label and label.lower() == "break":
        return (times[0] if times else None), resume
    if not times:
        return False, None
    if len(times) > 1 or label and label not in speakers:
        return times[0], resume           # a clip, song or jingle: the clock jumps across it
    return False, times[0]


# How a transcript is read into turns: an index built under another reading is rebuilt
# (``config.ChunkSettings.to_json``). 2: a speaker's label starts a turn on any line.
PARSE_VERSION = 2

# A line that opens with a bold speaker's label starts a turn, blank line or not: in 81 archive
# episodes 150 turns follow the one before on the next line ("...for a while there\n**Sugu
# Sougoumarane:** Yeah, going back to why I started this project"), and were read as the words of
# the speaker before.
_TURN_LABEL = r"[ \t]*\*\*[^*\n]{1,60}?\s*:\s*\*\*"
TURN_LINE_RE = re.compile("^" + _TURN_LABEL)
BLOCK_BREAK_RE = re.compile(r"\n\s*\n|\n(?=%s)" % _TURN_LABEL)   # a blank line, or a line like that


def split_blocks(text: str) -> list[str]:
    """The text's blocks as written (``iter_blocks`` without line numbers, lines not joined)."""
    return BLOCK_BREAK_RE.split(text)


def iter_blocks(text: str):
    """Yield (first_line_number, block_text) for each block: lines up to a blank line or up to a
    line that opens with a speaker's label (``TURN_LINE_RE``)."""
    lines: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), 1):
        if lines and (not line.strip() or TURN_LINE_RE.match(line)):
            yield start, " ".join(lines)
            lines = []
        if line.strip():
            if not lines:
                start = number
            lines.append(line.strip())
    if lines:
        yield start, " ".join(lines)


def episode_from_source(source: str) -> tuple[str, str]:
    """``.../practical-ai-260.md`` -> ("practical-ai-260", "260")."""
    stem = Path(source).stem if source else "transcript"
    number = re.search(r"(\d+)$", stem)
    return stem, number.group(1) if number else ""


def co_hosts(opening: Sequence[Turn], speakers: Sequence[str]) -> list[str]:
    """The ``speakers`` the opening turns introduce as a co-host, by full or first name."""
    text = " ".join(p.text for t in opening for p in t.paragraphs)
    found = []
    for name in speakers:
        names = "|".join(re.escape(n) for n in dict.fromkeys([name, name.split()[0]]))
        if re.search(rf"\bco-?hosts?\b[^.?!]{{0,60}}?\b(?:{names})\b|\b(?:{names})\b,? (?:is )?(?:my|our) co-?host",
                     text, re.I):
            found.append(name)
    return found


def parse_markdown(text: str, source: str = "") -> Transcript:
    """Parse a Changelog Markdown transcript into an untimed Transcript."""
    episode_id, number = episode_from_source(source)
    title = ""
    turns: list[Turn] = []
    speaker, paragraphs, inferred = None, [], False
    pending_break: float | None | bool = False   # False: no break; None: a break without a time
    pending_marker: float | None = None          # the time a bare marker gives the next words
    speakers_seen: list[str] = []

    def close_turn():
        if speaker is not None and paragraphs:
            turns.append(Turn(speaker, tuple(paragraphs), speaker_inferred=inferred))

    for line, block in iter_blocks(text):
        if block.startswith("#"):
            block = HEADING_RE.sub("", block)
            if not turns and not paragraphs and not title and not LABEL_RE.match(block) \
                    and not SPEAKER_RE.match(block):
                title = clean_markup(block)
                continue
            if not block.startswith("*"):
                continue                      # section headings (news issues) are not speech
        label = None
        m = SPEAKER_RE.match(block) or LABEL_RE.match(block) or PLAIN_LABEL_RE.match(block)
        if m:
            label = clean_markup(m.group(m.lastindex)).rstrip(":").strip()
            body = (m.group(1) if m.lastindex == 2 else "") + block[m.end():]
        else:
            body = block
        words, markers = split_markers(body)
        if label and label.lower() == "break" or markers and words.lower() in RANGE_WORDS:
            # A block of times and no words: an interlude or a bare time (see ``interlude``).
            pause, resume = interlude(label, markers, speakers_seen)
            if pause is not False and pending_break not in (False, None):
                # A jingle after a break: the talk stopped at the first, resumes at the second.
                resume = resume if resume is not None else pause
            elif pause is not False:
                pending_break = pause
            if resume is not None:
                pending_marker = resume
            continue
        if not words:
            continue                          # a label standing alone
        if label and label != speaker or label is None and speaker is None:
            close_turn()
            speaker = label or UNKNOWN_SPEAKER
            inferred = label is None
            paragraphs = []
            if label and label.lower() not in NON_SPEAKER_LABELS and label not in speakers_seen:
                speakers_seen.append(label)
        if pending_marker is not None:
            if not any(m.word_offset == 0 for m in markers):   # its own time is more precise
                markers = (Marker(0, pending_marker),) + markers
            pending_marker = None
        para = Paragraph(words, markers=markers, line=line)
        if pending_break is not False:
            para = Paragraph(words, markers=markers, line=line, break_before=True,
                             break_s=pending_break)
            pending_break = False
        paragraphs.append(para)
    # Times after the last words (an outro's start) say when the talk ended.
    end = pending_break if pending_break not in (False, None) else pending_marker
    if end is not None and paragraphs:
        last = paragraphs[-1]
        if not last.markers or last.markers[-1].seconds < end:
            paragraphs[-1] = replace(last, markers=last.markers + (Marker(last.words, end),))
    close_turn()
    if not turns:
        raise TranscriptError(
            "no transcript paragraphs found; expected Markdown paragraphs such as "
            "'**Speaker Name:** text'", source or None)
    # The first voice is usually the host who opens the show; everyone else is a guest, unless
    # the opening names them as a co-host ("I'm joined as always by my co-host, Chris Benson"). A
    # default for panel shows too, where it can be wrong; the page (when merged) overrides it.
    hosts = speakers_seen[:1] + co_hosts(turns[:2], speakers_seen[1:])
    episode = Episode(id=episode_id, title=title, number=number, hosts=tuple(hosts),
                      guests=tuple(s for s in speakers_seen if s not in hosts))
    return Transcript(episode=episode, turns=tuple(turns), source=source, format="markdown")
