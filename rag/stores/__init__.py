"""Where an index lives: files on disk (the default) or PostgreSQL with pgvector.

Configuration picks the store, never code: ``RAG_DATABASE_URL=postgresql://...`` puts every index
in that database; without it indexes are folders under ``RAG_INDEX_DIR``. Both build from the
same chunks and vectors, and ``retrieval.Retriever`` runs the same ranking over either: a store
only keeps the passages and generates candidates.

    passages.py   what both keep of a transcript: passages, embedding texts, columns, index names
    files.py      FAISS + BM25 files, memory-mapped (``StoredIndex``)
    postgres.py   tables, migrations and transactions; pgvector HNSW and BM25 over stored term
                  statistics for candidates (``PgIndex``)
    localpg.py    a throwaway PostgreSQL from the ``pgserver`` wheel, on 127.0.0.1 (tests, benches)

``open_store(config)`` is the one place that chooses: it returns a ``FileStore`` or a ``PgStore``,
which write, open and discard indexes the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable, ContextManager, Protocol

import numpy as np

from ..types import Chunk, Transcript

Progress = Callable[[str, int, int], None]


class Lexical(Protocol):
    doc_freq: dict                                   # content word -> passages using it

    def passage_scores(self, words: Sequence[str]) -> np.ndarray: ...
    def window_scores(self, words: Sequence[str], passage_scores: np.ndarray) -> np.ndarray: ...


class Store(Protocol):
    """What retrieval reads of an index. Rows number the passages 0..n-1 in ``columns`` order;
    windows are the rows of ``sentence_rows`` ((passage row, sentence number), by passage)."""

    name: str
    manifest: dict                 # format, model, dim, chunker, episodes, ...
    chunks: Sequence[Chunk]        # passage by row, read when asked for
    columns: object                # files.Columns: episode, show, chapter, times of every passage
    sentence_rows: np.ndarray
    transcripts: tuple[dict, ...]  # each episode's metadata and chapters
    vocabulary: tuple[str, ...]
    vocabulary_vectors: np.ndarray
    lexical: Lexical

    @property
    def large(self) -> bool: ...   # catalog scale: the fusion leaves the windows' BM25 out

    @property
    def scans(self) -> bool: ...   # every vector may be scored: then it has chunk_vectors and
                                   # sentence_vectors, arrays of every passage's and window's vector

    def nearest(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray: ...
    def passage_vectors(self, rows) -> np.ndarray: ...
    def window_vectors(self, rows: np.ndarray) -> np.ndarray: ...
    def sample_vectors(self, n: int = 4096) -> np.ndarray: ...
    def present(self, rows: Sequence[int]) -> list[int]: ...
    def full_transcripts(self) -> list[dict]: ...
    def reading(self) -> ContextManager: ...


class FileStore:
    """Indexes as folders under ``config.index_dir`` (``files.py``)."""

    def __init__(self, config):
        self.config = config

    def write(self, transcripts: Sequence[Transcript], sources: Sequence[str | Path], *, name: str,
              embedder, progress: Progress | None = None):
        from .files import build_index

        return build_index(transcripts, sources, name=name, index_dir=self.config.index_dir, embedder=embedder,
                           settings=self.config.chunking, progress=progress)

    def open(self, name: str, *, model: str, sources: Sequence[str | Path] | None = None) -> Store:
        """Index ``name``; IndexNotFound or StaleIndex (built from other ``sources``, with another
        model or chunker) with the command that fixes it."""
        from .files import load_index

        return load_index(self.config.index_dir, name, model=model, settings=self.config.chunking, sources=sources)

    def rebuild_sources(self, name: str) -> list[Path] | None:
        """The sources a stale index can be rebuilt from as it was built (None: they changed)."""
        from .files import unchanged_sources

        return unchanged_sources(self.config.index_dir, name)

    def discard(self, name: str) -> None:
        """Nothing to do before a rebuild: a build publishes a new version beside the old one."""


class PgStore:
    """Indexes in PostgreSQL with pgvector (``postgres.py``), shared by every replica."""

    def __init__(self, config):
        self.config = config

    def write(self, transcripts: Sequence[Transcript], sources: Sequence[str | Path], *, name: str,
              embedder, progress: Progress | None = None):
        from .postgres import write_index

        return write_index(transcripts, sources, name=name, config=self.config, embedder=embedder, progress=progress)

    def open(self, name: str, *, model: str, sources: Sequence[str | Path] | None = None) -> Store:
        from .postgres import open_pg_index

        return open_pg_index(self.config, name, model=model, settings=self.config.chunking)

    def rebuild_sources(self, name: str) -> list[Path] | None:
        """None: an index in the database is rebuilt with `rag index`, from the sources its
        episodes name (another process may be serving it)."""
        return None

    def discard(self, name: str) -> None:
        """Drop the index (built with another model or chunker) before it is written again."""
        from .postgres import drop_index

        drop_index(self.config, name)


def open_store(config) -> FileStore | PgStore:
    """The store configuration picks: PostgreSQL when ``RAG_DATABASE_URL`` is set, else files."""
    return PgStore(config) if config.database_url else FileStore(config)
