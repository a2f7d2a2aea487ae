"""Transcript sources: files, folders of them, and ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` archives.

A folder is read recursively; an archive member by member, streamed, without unpacking it to disk.
Each yields ``Document``s (a name and its text) in a stable order. Inside a folder or an archive a
file that is no transcript (``ABOUT.md``, a licence, a picture) is skipped with a note; a file named
on its own must be a transcript.
"""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..errors import TranscriptError
from ..types import Transcript

TRANSCRIPT_SUFFIXES = (".md", ".markdown", ".txt", ".vtt", ".srt")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MAX_MEMBER_BYTES = 32 * 1024 * 1024   # a transcript is well under 1 MB; a bigger member is no transcript
Note = Callable[[str], None]


@dataclass(frozen=True)
class Document:
    name: str          # the file's path, or "archive.tar.gz:member/path.md"
    text: str
    member: bool       # from inside a folder or an archive (not named on its own)


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def expand(sources: Sequence[str | Path]) -> list[tuple[Path, bool]]:
    """The files behind ``sources``, each with whether it came from inside a folder: a folder's
    transcript files and archives (recursively, sorted), single files and archives as given. A
    folder holding none is an error that says so."""
    out: list[tuple[Path, bool]] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and not is_documentation(p.name)
                           and (p.name.lower().endswith(TRANSCRIPT_SUFFIXES) or is_archive(p))
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                raise TranscriptError("this folder holds no transcripts (.md, .txt, .vtt, .srt) or "
                                      "archives of them (.tar.gz, .zip)", str(path))
            out.extend((p, True) for p in found)
        else:
            out.append((path, False))
    return out


def documents(path: Path, *, in_folder: bool = False, note: Note | None = None) -> Iterator[Document]:
    """The transcripts in one file: itself, or an archive's members in archive order."""
    from ..parsers import read_text

    if not is_archive(path):
        yield Document(str(path), read_text(path), member=in_folder)
        return
    try:
        if path.name.lower().endswith(".zip"):
            yield from _zip_members(path, note)
        else:
            yield from _tar_members(path, note)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise TranscriptError(f"cannot read this archive ({err}); expected a .tar.gz or .zip of "
                              "transcripts", str(path)) from None


def _decode(data: bytes, name: str, note: Note | None) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if note:
            note(f"skipped {name}: not UTF-8 text")
        return None
    if not text.strip() or "\x00" in text:
        if note:
            note(f"skipped {name}: {'empty' if not text.strip() else 'binary data'}")
        return None
    return text


# A collection's own documentation, never an episode (the catalog's ABOUT.md quotes a speaker label).
DOCUMENTATION = {"readme", "about", "license", "licence", "copying", "contributing", "notice", "authors"}


def is_documentation(name: str) -> bool:
    return Path(name).stem.lower() in DOCUMENTATION


def _wanted(member: str, size: int, note: Note | None) -> bool:
    parts = member.split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts if p):
        return False
    if not member.lower().endswith(TRANSCRIPT_SUFFIXES) or is_documentation(member):
        return False
    if size > MAX_MEMBER_BYTES:
        if note:
            note(f"skipped {member}: {size / 1e6:.0f} MB is too big for a transcript")
        return False
    return True


def _tar_members(path: Path, note: Note | None) -> Iterator[Document]:
    with tarfile.open(path, "r:*") as tar:
        for info in tar:   # streamed: members are read in order, never all at once
            if not info.isfile() or not _wanted(info.name, info.size, note):
                continue
            f = tar.extractfile(info)
            text = _decode(f.read() if f else b"", info.name, note)
            if text is not None:
                yield Document(f"{path}:{info.name}", text, member=True)


def _zip_members(path: Path, note: Note | None) -> Iterator[Document]:
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if info.is_dir() or not _wanted(info.filename, info.file_size, note):
                continue
            text = _decode(z.read(info), info.filename, note)
            if text is not None:
                yield Document(f"{path}:{info.filename}", text, member=True)


def read_transcripts(files: Sequence[Path], in_folder: set[Path],
                     progress: Callable[[str, int, int], None] | None = None) -> list[Transcript]:
    """Parse and time every transcript in ``files`` (archives member by member). Inside a folder
    or an archive, a file that is no transcript is skipped with a note; one named alone is an error.
    An episode id met twice is indexed once (the first). ``progress(stage, done, total)`` hears
    the notes and the count."""
    from ..errors import InputError
    from ..parsers import parse_text, timed

    def note(message: str) -> None:
        if progress:
            progress(f"note: {message}", 0, 0)

    transcripts: list[Transcript] = []
    seen: dict[str, str] = {}
    many = len(files) > 1 or any(is_archive(f) for f in files)
    for path in files:
        for doc in documents(path, in_folder=path in in_folder, note=note):
            try:
                transcript = timed(parse_text(doc.text, doc.name))
            except TranscriptError as err:
                if not doc.member:
                    raise
                note(f"skipped {doc.name}: {err.reason}")
                continue
            ep = transcript.episode.id
            if ep in seen:
                note(f"skipped {doc.name}: episode {ep} is already read from {seen[ep]}")
                continue
            seen[ep] = doc.name
            transcripts.append(transcript)
            if progress and many:
                progress("read", len(transcripts), 0)
    if not transcripts:
        raise InputError("no transcripts found in " + ", ".join(map(str, files)))
    if progress and many:
        progress("read", len(transcripts), len(transcripts))
    return transcripts
