"""WebVTT and SubRip subtitles: every cue carries its own exact time.

    WEBVTT                                   1
                                             00:00:01,000 --> 00:00:04,000
    00:01.000 --> 00:04.000                  Chris Benson: Welcome to the show.
    <v Chris Benson>Welcome to the show.

A voice (``<v Name>``) or a ``Name: text`` prefix names the speaker; consecutive cues of one
speaker form one turn, one paragraph per cue. Cues without a speaker go to "Speaker", marked
``speaker_inferred=True``.
"""

from __future__ import annotations

import re

from ..errors import TranscriptError
from ..types import Episode, Marker, Paragraph, Transcript, Turn
from .markdown import episode_from_source

TIMING_RE = re.compile(
    r"^\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})\s*-->\s*((?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3})(?:\s.*)?$")
VOICE_RE = re.compile(r"<v(?:\.[\w.-]+)?\s+([^>]+)>")
TAG_RE = re.compile(r"</?[^>]+>")
PREFIX_RE = re.compile(r"^([A-Z][\w.'-]*(?: [A-Z][\w.'-]*){0,3}):\s+(?=\S)")
NO_SPEAKER = "Speaker"


def cue_seconds(text: str) -> float:
    parts = text.replace(",", ".").split(":")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def blocks_with_lines(text: str):
    """Yield lists of (line_number, line) for each blank-line-separated block. A line of spaces
    right after a cue's timing line is the cue's (empty) first line, not the end of the cue:
    YouTube's captions open every cue so, and the words come on the line after it."""
    block: list[tuple[int, str]] = []
    for number, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        if line.strip():
            block.append((number, line.rstrip()))
        elif line and block and "-->" in block[-1][1]:
            continue
        elif block:
            yield block
            block = []
    if block:
        yield block


def parse_cue(block, source: str, kind: str):
    """(start, end, speaker or None, text, line) for one cue block, or None for a non-cue."""
    timing_at = next((i for i, (_, line) in enumerate(block) if "-->" in line), None)
    if timing_at is None:
        return None
    if timing_at > 1:
        number = block[timing_at][0]
        raise TranscriptError(f"cue timing on line {number} is not the cue's first or second line; "
                              f"separate cues with a blank line", source or None, number)
    number, timing = block[timing_at]
    m = TIMING_RE.match(timing)
    if not m:
        example = "00:00:01,000 --> 00:00:04,000" if kind == "srt" else "00:01.000 --> 00:04.000"
        raise TranscriptError(f"malformed cue timing {timing.strip()!r}; expected e.g. '{example}'",
                              source or None, number)
    start, end = cue_seconds(m.group(1)), cue_seconds(m.group(2))
    if end < start:
        raise TranscriptError(f"cue ends ({m.group(2)}) before it starts ({m.group(1)}); fix the "
                              f"timing line", source or None, number)
    raw = [line.strip() for _, line in block[timing_at + 1:]]
    voice = VOICE_RE.search(" ".join(raw))
    speaker = voice.group(1).strip() if voice else None
    lines = [words for words in (" ".join(TAG_RE.sub("", line).split()) for line in raw) if words]
    if speaker is None and lines:
        prefix = PREFIX_RE.match(lines[0])
        if prefix:
            speaker, lines[0] = prefix.group(1), lines[0][prefix.end():]
    return start, end, speaker, lines, number + 1


def new_lines(lines: list[str], before: list[str]) -> list[str]:
    """``lines`` less the lines the cue before already showed. Rolling captions (YouTube's
    automatic ones) repeat the last cue's bottom line at the top of the next, and hold each line
    again for a moment in a cue of its own: read as they come, every sentence was said two or
    three times."""
    for k in range(min(len(lines), len(before)), 0, -1):
        if lines[:k] == before[-k:]:
            return lines[k:]
    return lines


def parse_subtitles(text: str, source: str, kind: str) -> Transcript:
    turns: list[Turn] = []
    shown: list[str] = []           # the lines of the cue before, and its speaker
    shown_by: str | None = None
    for block in blocks_with_lines(text):
        first = block[0][1].strip()
        if kind == "vtt" and (first.startswith(("WEBVTT", "NOTE", "STYLE", "REGION"))
                              and "-->" not in first):
            continue
        if kind == "srt" and "-->" not in first and len(block) > 1 and "-->" not in block[1][1] \
                and not first.isdigit():
            raise TranscriptError(f"expected a cue number and a timing line, found {first!r}; "
                                  f"each SubRip cue starts with its number, then 'start --> end'",
                                  source or None, block[0][0])
        cue = parse_cue(block, source, kind)
        if cue is None:
            if kind == "srt":
                number, found = block[1] if len(block) > 1 else block[0]
                raise TranscriptError(f"malformed cue timing {found.strip()!r}; expected e.g. "
                                      f"'00:00:01,000 --> 00:00:04,000'", source or None, number)
            continue
        start, end, speaker, lines, line = cue
        # Only one voice's captions roll: "Yes." / "Yes." of two speakers in turn are two answers.
        fresh = new_lines(lines, shown) if speaker == shown_by else lines
        shown, shown_by = lines, speaker
        words = " ".join(fresh)
        if not words:
            continue
        para = Paragraph(words, start_s=start, end_s=end, estimated=False,
                         markers=(Marker(0, start),), line=line)
        name = speaker or NO_SPEAKER
        if turns and turns[-1].speaker == name:
            turns[-1] = Turn(name, turns[-1].paragraphs + (para,), turns[-1].speaker_inferred)
        else:
            turns.append(Turn(name, (para,), speaker_inferred=speaker is None))
    if not turns:
        raise TranscriptError(f"no subtitle cues with text found; is this really a "
                              f"{kind.upper()} file?", source or None)
    speakers = list(dict.fromkeys(t.speaker for t in turns if not t.speaker_inferred))
    episode_id, number = episode_from_source(source)
    episode = Episode(id=episode_id, number=number, hosts=tuple(speakers[:1]),
                      guests=tuple(speakers[1:]))
    return Transcript(episode=episode, turns=tuple(turns), source=source, format=kind)


def parse_vtt(text: str, source: str = "") -> Transcript:
    return parse_subtitles(text, source, "vtt")


def parse_srt(text: str, source: str = "") -> Transcript:
    return parse_subtitles(text, source, "srt")
