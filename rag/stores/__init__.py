"""Where an index lives: files on disk (the default) or PostgreSQL with pgvector.

Configuration picks the store, never code: ``RAG_DATABASE_URL=postgresql://...`` puts every index
in that database; without it indexes are folders under ``RAG_INDEX_DIR``. Both build from the
same chunks and vectors, and ``retrieval.Retriever`` runs the same ranking over either: a store
only keeps the passages and generates candidates.

    files.py      FAISS + BM25 files, memory-mapped (``StoredIndex``)
    postgres.py   tables, migrations and transactions; pgvector HNSW and BM25 over stored term
                  statistics for candidates (``PgIndex``)
    localpg.py    a throwaway PostgreSQL from the ``pgserver`` wheel, on 127.0.0.1 (tests, benches)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ContextManager, Protocol

import numpy as np

from ..types import Chunk


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
