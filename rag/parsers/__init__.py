"""Read a transcript file into a timed Transcript.

    load_transcript(path)   detect the format, parse, time every paragraph, assign chapters
    parse_file(path)        detect and parse only (paragraph times still None, except subtitles)
    load_default_episode()  the shipped Practical AI #260: page + Markdown merged, then timed

Formats: ``.md`` Changelog Markdown, ``.txt`` episode-page text, ``.vtt`` WebVTT, ``.srt`` SubRip,
and speaker-labelled text in any of them (``plain.py``: Otter, Rev, Descript exports, "Name: text"
lines); other extensions are sniffed from the content. Everything here is stdlib-only so that
``rag transcript FILE`` starts instantly.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import TranscriptError
from ..timing import assign_chapters, assign_times
from ..types import Transcript, replace
from .markdown import parse_markdown
from .merge import merge
from .page import parse_page
from .plain import looks_plain, parse_plain
from .subtitles import parse_srt, parse_vtt

__all__ = ["load_transcript", "parse_file", "parse_text", "load_default_episode", "default_sources",
           "detect_format", "parse_markdown", "parse_page", "parse_plain", "parse_vtt", "parse_srt", "merge"]

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "practical-ai-260"
DEFAULT_EPISODE_ID = "practical-ai-260"
PARSERS = {"markdown": parse_markdown, "page": parse_page, "plain": parse_plain, "vtt": parse_vtt,
           "srt": parse_srt}
EXTENSIONS = {".md": "markdown", ".markdown": "markdown", ".txt": "page", ".vtt": "vtt",
              ".srt": "srt"}
FORMAT_ALIASES = {"md": "markdown", "txt": "page", "webvtt": "vtt", "subrip": "srt"}


def sniff_format(text: str) -> str:
    """Guess the format from the first lines when the extension does not say."""
    head = text.lstrip("\ufeff")[:4000]
    if head.startswith("WEBVTT"):
        return "vtt"
    if re.search(r"^\d+\s*\n\d{1,2}:\d{2}:\d{2},\d{3}\s*-->", head, re.M):
        return "srt"
    if re.search(r"^\*{1,2}[^*\n]{1,60}:\*{1,2}", head, re.M):
        return "markdown"
    if re.search(r"^Transcript\s*$", text, re.M) or re.search(r"Episode #\d+", head):
        return "page"
    if looks_plain(text):
        return "plain"
    return "markdown"


def detect_format(path: Path, text: str, fmt: str | None = None) -> str:
    if fmt:
        fmt = FORMAT_ALIASES.get(fmt.lower(), fmt.lower())
        if fmt not in PARSERS:
            raise TranscriptError(f"unknown format {fmt!r}; use one of {', '.join(PARSERS)}",
                                  str(path))
        return fmt
    by_extension = EXTENSIONS.get(path.suffix.lower())
    sniffed = sniff_format(text)
    # A .txt file may be a plain Markdown export; trust the content when it clearly disagrees.
    if by_extension == "page" and sniffed in ("markdown", "plain", "vtt", "srt") and \
            not re.search(r"^Transcript\s*$", text, re.M):
        return sniffed
    if by_extension == "markdown" and sniffed == "plain":   # "Name: text" lines, no **bold** labels
        return sniffed
    return by_extension or sniffed


EXPECTED = "expected a .md, .txt, .vtt or .srt transcript"


def read_text(path: Path) -> str:
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TranscriptError(f"file not found; check the path ({EXPECTED})", str(path)) from None
    except OSError as err:
        raise TranscriptError(f"cannot read it ({err.strerror or err}); {EXPECTED}", str(path)) from None
    if stat.S_ISDIR(mode):
        raise TranscriptError(f"is a directory, not a file; give the transcript files in it "
                              f"({EXPECTED})", str(path))
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        raise TranscriptError(f"is a device or socket, not a file; {EXPECTED}", str(path))
    try:  # a regular file, or a pipe such as <(cat episode.vtt)
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise TranscriptError(f"cannot read it ({err.strerror or err}); {EXPECTED}", str(path)) from None
    except UnicodeDecodeError as err:
        raise TranscriptError(f"not UTF-8 text ({err.reason} at byte {err.start}); save the "
                              f"transcript as UTF-8", str(path)) from None
    if not text.strip():
        raise TranscriptError("file is empty; expected a transcript", str(path))
    if "\x00" in text:  # valid UTF-8 can still be binary (a PDF, a zip): never a transcript
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise TranscriptError("binary data (a NUL byte); expected a text transcript "
                              "(.md, .txt, .vtt or .srt)", str(path), line)
    return text


def parse_file(path: str | Path, fmt: str | None = None) -> Transcript:
    """Parse ``path`` without timing it; a file that is no transcript is refused."""
    path = Path(path)
    return parse_text(read_text(path), str(path), fmt)


def parse_text(text: str, source: str, fmt: str | None = None) -> Transcript:
    """Parse a transcript's text; ``source`` names it (its extension and file name are read for the
    format and the episode id). Text that is no transcript is refused."""
    transcript = PARSERS[detect_format(Path(source), text, fmt)](text, source)
    if not looks_like_transcript(transcript, text):
        raise TranscriptError("this does not look like a transcript: no speaker labels, no "
                              "timestamps and no chapters were found (expected Changelog Markdown "
                              "with **Speaker:** lines, lines that start with a speaker's name such "
                              "as 'Jane Doe: ...' or 'Jane Doe (00:01:05):', an episode page's "
                              "text, WebVTT or SRT)",
                              source)
    return transcript


_LABEL_LINE = re.compile(r"^\*{1,2}[^*\n]{1,60}:\*{1,2}", re.M)   # **Jerod Santo:** alone on a line
_MARKER = re.compile(r"\\*\[\\*\d{1,3}(?::\d{1,2}){1,3}")           # \[06:01\], [1:03:50]


def looks_like_transcript(transcript: Transcript, text: str = "") -> bool:
    """Something a parser recognised (a named speaker, a timestamp, a chapter list), or at least a
    speaker label or time marker in the text (a label alone on its line names no turn)."""
    if transcript.chapters or _LABEL_LINE.search(text) or _MARKER.search(text):
        return True
    for turn in transcript.turns:
        if not turn.speaker_inferred:
            return True
        if any(p.markers or p.start_s is not None or not p.estimated for p in turn.paragraphs):
            return True
    return False


def timed(transcript: Transcript) -> Transcript:
    """Every paragraph timed, chapters assigned, and the show and page link of a Changelog episode
    filled in from its id where the source left them blank."""
    from ..shows import with_show

    transcript = assign_chapters(assign_times(transcript))
    return replace(transcript, episode=with_show(transcript.episode))


def load_transcript(path: str | Path, fmt: str | None = None) -> Transcript:
    """Parse ``path`` and return it with every paragraph timed and chapters assigned."""
    return timed(parse_file(path, fmt))


def default_sources() -> list[Path]:
    """The shipped episode's files: the page text and the Markdown transcript."""
    return [DATA_DIR / "episode-page.txt", DATA_DIR / "transcript.md"]


def load_default_episode() -> Transcript:
    """Practical AI #260, merged from its page (chapters, guests) and Markdown (speakers)."""
    page_path, md_path = default_sources()
    page = parse_page(read_text(page_path), str(page_path))
    markdown = parse_markdown(read_text(md_path), str(md_path))
    merged = merge(page, markdown)
    merged = replace(merged, episode=replace(merged.episode, id=DEFAULT_EPISODE_ID))
    return timed(merged)
