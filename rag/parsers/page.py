"""The episode page as published on changelog.com, copied as plain text.

    Practical AI – Episode #260                 show and number
    Generating the future of art & ...          title (the first line after it)
    with Anastasis Germanidis of Runway         the guest
    Runway is an applied AI research ...        summary (first paragraph after "All Episodes")
    Chapters / 1 00:00 Welcome to ...           chapter list; "Sponsor: ..." titles hold ads
    Transcript / ...paragraphs...               the conversation, with [MM:SS] and "Break: [MM:SS]"
    Changelog / Our transcripts are open ...    footer, ignored

The page has no speaker labels, so speakers are inferred (see ``infer_speakers``) and every such
turn carries ``speaker_inferred=True``.
"""

from __future__ import annotations

import re

from ..errors import TranscriptError
from ..types import Chapter, Episode, Paragraph, Transcript, Turn
from .markdown import episode_from_source, split_markers

SHOW_RE = re.compile(r"^(.+?)\s+[–—-]\s+Episode\s+#?(\S+)\s*$")
GUEST_RE = re.compile(r"^with\s+(.+?)(?:\s+of\s+.+)?$")
CHAPTER_RE = re.compile(r"^(\d+)\s+(\d{1,2}(?::\d{2}){1,2})\s+(.+)$")
BREAK_RE = re.compile(r"^Break:?\s*(?:\[(\d[\d:.]*)\])?")
HOST_RES = [
    re.compile(r"\bI am your (?:co-)?host,?\s+([A-Z][\w'-]+(?: [A-Z][\w'-]+)+)"),
    re.compile(r"\bI'?m your (?:co-)?host,?\s+([A-Z][\w'-]+(?: [A-Z][\w'-]+)+)"),
    re.compile(r"\b(?:my name is|I'm|I am)\s+([A-Z][\w'-]+ [A-Z][\w'-]+),? (?:and I'm )?your host"),
]
# Page chrome inside the transcript section; none of it is speech.
SKIP_LINES = {"📝 Edit Transcript", "Changelog", "Player art", "0:00 / 0:00"}
FOOTER_START = "Our transcripts are open source"
# Openers that mark a paragraph as answering (or continuing) rather than asking.
CONTINUATION_OPENERS = ("so ", "and ", "but ", "because ", "that ", "it’s also", "it's also",
                        "even ", "i think", "also")


def parse_time_loose(text: str) -> float:
    parts = [float(p) for p in text.split(":")]
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def parse_header(lines: list[str]) -> dict:
    """Show, number, title, guest and summary from the lines before "Chapters"."""
    head = [line.strip() for line in lines if line.strip()]
    info = {"show": "", "number": "", "title": "", "guests": (), "summary": ""}
    for i, line in enumerate(head[:6]):
        m = SHOW_RE.match(line)
        if m:
            info["show"], info["number"] = m.group(1), m.group(2)
            if i + 1 < len(head):
                info["title"] = head[i + 1]
            break
    for line in head[:8]:
        m = GUEST_RE.match(line)
        if m:
            info["guests"] = tuple(g.strip() for g in re.split(r",\s*|\s+and\s+|\s+&\s+", m.group(1)))
            break
    if "All Episodes" in head:
        after = head[head.index("All Episodes") + 1:]
        if after and after[0] not in ("Featuring", "Sponsors", "Chapters"):
            info["summary"] = after[0]
    return info


def find_host(paragraphs: list[str], summary: str) -> str:
    for text in paragraphs[:3]:
        for pattern in HOST_RES:
            m = pattern.search(text.replace("’", "'"))
            if m:
                return m.group(1)
    return "Host"


def is_question(text: str) -> bool:
    """Does the paragraph end by asking something (a question in its last sentence or two)?"""
    return "?" in text.rstrip()[-80:]


SECOND_PERSON = {"you", "your", "you're", "you've", "yourself", "you'll", "you'd"}


def sounds_like_host(para: Paragraph, guest: str) -> bool:
    """Hosts ask questions and talk *to* the guest ("you", the guest's name)."""
    words = re.findall(r"[\w']+", para.text.lower().replace("’", "'"))
    you = sum(w in SECOND_PERSON for w in words) / max(len(words), 1)
    first_name = guest.split()[0].lower() if guest else ""
    addressed = bool(first_name) and first_name in " ".join(words[:4])
    return is_question(para.text) or you >= 0.03 or addressed


def infer_speakers(paragraphs: list[Paragraph], host: str, guest: str) -> list[str]:
    """Assign host or guest to each paragraph of a two-person interview.

    The host opens. A question from the host hands over to the guest. After the guest, the host
    speaks again only when the paragraph sounds like the host (a question, "you" addressed to
    the guest, the guest's name) and does not open like a continuation ("So", "And", "But"...).
    After a host remark that asked nothing, the host keeps the floor only to ask a question.
    Measured against the Markdown's real labels in tests/test_parsers.py.
    """
    speakers: list[str] = []
    for i, para in enumerate(paragraphs):
        if i == 0:
            speakers.append(host)
            continue
        prev_speaker, prev = speakers[-1], paragraphs[i - 1]
        hostlike = sounds_like_host(para, guest)
        if prev_speaker == host:
            keeps = not is_question(prev.text) and hostlike and is_question(para.text)
            speakers.append(host if keeps else guest)
        else:
            opens_continuation = para.text.lower().startswith(CONTINUATION_OPENERS)
            takes_over = hostlike and (is_question(para.text) or not opens_continuation)
            speakers.append(host if takes_over else guest)
    return speakers


def parse_page(text: str, source: str = "") -> Transcript:
    """Parse the published episode page into an untimed Transcript with inferred speakers."""
    lines = text.splitlines()
    stripped = [line.strip() for line in lines]
    chapters_at = stripped.index("Chapters") if "Chapters" in stripped else None
    transcript_at = stripped.index("Transcript") if "Transcript" in stripped else None
    if transcript_at is None:
        raise TranscriptError("no 'Transcript' line found; expected the episode page text with a "
                              "line 'Transcript' before the conversation", source or None)
    info = parse_header(lines[:chapters_at or transcript_at])

    chapters: list[Chapter] = []
    for line in stripped[(chapters_at or transcript_at) + 1:transcript_at]:
        m = CHAPTER_RE.match(line)
        if m:
            title = m.group(3).strip()
            chapters.append(Chapter(title, parse_time_loose(m.group(2)), int(m.group(1)),
                                    sponsor=title.lower().startswith("sponsor")))

    paragraphs: list[Paragraph] = []
    pending_break: float | None | bool = False
    for number in range(transcript_at + 1, len(lines)):
        line = stripped[number]
        if line.startswith(FOOTER_START):
            break
        if not line or line in SKIP_LINES or line.startswith("Play the audio to listen"):
            continue
        m = BREAK_RE.match(line)
        if m and len(line) < 30:
            pending_break = parse_time_loose(m.group(1)) if m.group(1) else None
            continue
        words, markers = split_markers(line)
        if not words:
            continue
        brk = pending_break is not False
        paragraphs.append(Paragraph(words, markers=markers, line=number + 1, break_before=brk,
                                    break_s=pending_break if brk else None))
        pending_break = False
    if not paragraphs:
        raise TranscriptError("no transcript paragraphs after the 'Transcript' line",
                              source or None, transcript_at + 1)

    host = find_host([p.text for p in paragraphs], info["summary"])
    guests = tuple(g for g in info["guests"] if g != host)
    speakers = infer_speakers(paragraphs, host, guests[0] if guests else "Guest")
    turns: list[Turn] = []
    for speaker, para in zip(speakers, paragraphs):
        if turns and turns[-1].speaker == speaker:
            turns[-1] = Turn(speaker, turns[-1].paragraphs + (para,), speaker_inferred=True)
        else:
            turns.append(Turn(speaker, (para,), speaker_inferred=True))

    episode_id, _ = episode_from_source(source)
    show_slug = re.sub(r"[^a-z0-9]+", "-", info["show"].lower()).strip("-")
    if info["show"] and info["number"]:
        episode_id = f"{show_slug}-{info['number']}"
    episode = Episode(id=episode_id, title=info["title"], show=info["show"], number=info["number"],
                      summary=info["summary"], hosts=(host,) if host != "Host" else (),
                      guests=guests)
    return Transcript(episode=episode, chapters=tuple(chapters), turns=tuple(turns),
                      source=source, format="page")
