"""The index on disk: build it, write it atomically, load it back and refuse (or rebuild) when stale.

Layout of ``<index_dir>/<name>/``::

    CURRENT              the name of the live version folder (replaced atomically)
    v-<stamp>/
        manifest.json    format, model, dimension, chunker settings, sha256 of every source
        chunks.jsonl     one Chunk per line, with sentence times; chunk_offsets.npy where each
                         line starts (passages are read on demand: see ChunkTable)
        columns.npz      each passage's episode, show, chapter, times and each window's speaker
        chunks.npy       chunk vectors, float32 (inner product = cosine; vectors are unit length),
                         memory-mapped at load; chunks.faiss the same as a FAISS index: exact
                         (flat), or from ANN_MIN passages the HNSW graph that search reads
        sentences.npy    sentence-window vectors, for small-to-big matching (memory-mapped)
        sentence_rows.npy  (chunk number, sentence number) for each sentence vector
        bm25/, sentence_bm25/  the BM25 indexes of chunks and sentence windows (bm25s, memory-mapped)
        doc_freq.json    content word -> the number of chunks using it (coverage, IDF weights)
        episodes.json    each episode's metadata and chapters: what a start reads
        transcripts.json the parsed transcripts (episode, chapters, turns) the index was built from,
                         read only on demand (the baselines re-chunk them)
        vocabulary.json  the transcripts' content words, and vocabulary.npy their vectors (float16):
                         what a question word the transcripts never use comes closest to

A build writes a new version folder and only then points CURRENT at it, so a crash mid-build
leaves the previous index intact. Embeddings are cached by content hash in
``<index_dir>/.cache/embeddings.sqlite``, so a rebuild embeds only what changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..config import ChunkSettings
from ..embedding import CachedEmbedder, Embedder
from ..errors import IndexError_, IndexNotFound, InputError, StaleIndex
from ..types import Chunk, Transcript
from .passages import (ANN_MIN, INDEX_NAME, Columns, check_index_name, embedding_text,  # noqa: F401 - re-exported
                       chunk_passages, passage_layout, sentence_window, slug, vocabulary, window_spans)

FORMAT = "rag-index/7"  # 2: vectors carry the chapter title; 3: start_s excludes question context;
                        # 4: word vectors of the vocabulary; 5: passages carry show, episode title, url;
                        # 6: vectors as .npy and BM25 persisted: a start rebuilds nothing;
                        # 7: passages read on demand (chunk_offsets.npy), columns.npz
Progress = Callable[[str, int, int], None]  # (stage, done, total)

# The only folders a build ever removes: versions it wrote itself (see ``build_index``).
VERSION_DIR = re.compile(r"v-\d{8}-\d{6}-[0-9a-f]{8}(\.tmp)?")
LOCK_WAIT_S = 600.0


def sha256_file(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class StoredIndex:
    """A loaded index: everything retrieval needs, read-only."""

    name: str
    path: Path
    manifest: dict
    chunks: "ChunkTable"          # a Sequence[Chunk], each read from disk when first asked for
    columns: "Columns"            # what retrieval reads of every passage, as arrays
    chunk_vectors: np.ndarray     # (chunks, dim) float32, memory-mapped
    sentence_vectors: np.ndarray  # (sentences, dim) float32, memory-mapped
    sentence_rows: np.ndarray     # (n, 2) int32
    transcripts: tuple[dict, ...]  # each episode's metadata and chapters (no turns: see full_transcripts)
    vocabulary: tuple[str, ...]                            # content words of the chunks, sorted
    vocabulary_vectors: np.ndarray                         # (len(vocabulary), dim) float32
    lexical: "Lexical"                                     # BM25s and word counts, built with the index
    ann: object = None            # the HNSW graph of the passage vectors (from ANN_MIN passages), else None

    @property
    def model(self) -> str:
        return self.manifest["model"]

    # --- what retrieval reads (the store protocol: see rag/stores/__init__.py) ---------------

    @property
    def large(self) -> bool:
        """Past ``ANN_MIN`` passages: dense candidates come from the graph, not a scan of all."""
        return self.ann is not None

    @property
    def scans(self) -> bool:
        """Whether a question may score every passage vector (``chunk_vectors @ q``)."""
        return self.ann is None

    def nearest(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        """Candidate passages for ``q``: the graph's ``k`` nearest, or, within ``allowed``, every
        passage it admits (a narrow filter is scored exactly)."""
        if allowed is not None:
            return np.flatnonzero(allowed)
        ids = self.ann.search(np.ascontiguousarray(q[None, :], dtype=np.float32), k)[1][0]
        return ids[ids >= 0]

    def passage_vectors(self, rows) -> np.ndarray:
        return np.asarray(self.chunk_vectors[rows], dtype=np.float32)

    def window_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of sentence windows ``rows`` (rows of ``sentence_rows``)."""
        return np.asarray(self.sentence_vectors[rows], dtype=np.float32)

    def sample_vectors(self, n: int = 4096) -> np.ndarray:
        """A fixed sample of passage vectors, for the population's mean and spread."""
        rows = np.sort(np.random.default_rng(0).choice(len(self.chunks), min(n, len(self.chunks)), replace=False))
        return np.ascontiguousarray(self.chunk_vectors[rows], dtype=np.float32)

    def present(self, rows: Sequence[int]) -> list[int]:
        """The rows whose passages can be read (a database may have replaced some since)."""
        return list(rows)

    @contextlib.contextmanager
    def reading(self):
        """One question's reads (a database store reads them in one snapshot)."""
        yield self

    def full_transcripts(self) -> list[dict]:
        """The parsed transcripts with their turns, read from disk on each call."""
        return json.loads((self.path / "transcripts.json").read_text())


class ChunkTable(Sequence):
    """The passages of an index, read from ``chunks.jsonl`` one line at a time when first asked for.

    A catalog holds ~160,000 passages with a million sentences: parsing them all would take most
    of a start (and a gigabyte), while a question reads a few dozen. ``offsets`` are the byte
    offsets of the lines (one more than there are passages); reads use ``os.pread``, so threads
    share the file safely. What retrieval needs of every passage is in ``Columns``.
    """

    CACHE = 8192  # passages kept parsed

    def __init__(self, path: Path, offsets: np.ndarray):
        self.path = path
        self.offsets = offsets
        self._fd: int | None = None
        self._parsed: dict[int, Chunk] = {}

    def __len__(self) -> int:
        return max(len(self.offsets) - 1, 0)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"passage {i} of {len(self)}")
        chunk = self._parsed.get(i)
        if chunk is None:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            chunk = Chunk.from_json(json.loads(os.pread(self._fd, end - start, start)))
            if len(self._parsed) >= self.CACHE:
                self._parsed.clear()
            self._parsed[i] = chunk
        return chunk

    def __iter__(self):
        with open(self.path, "rb") as f:
            for line in f:
                if line.strip():
                    yield Chunk.from_json(json.loads(line))

    def __del__(self):
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)


@dataclass(frozen=True)
class Lexical:
    """The lexical side of an index, computed at build time so that a start tokenizes nothing."""

    bm25: object                  # bm25s.BM25 over chunks (chapter title + text)
    sentence_bm25: object         # bm25s.BM25 over sentence windows
    doc_freq: dict                # content word -> chunks using it

    @classmethod
    def build(cls, chunks: Sequence[Chunk], rows) -> "Lexical":
        bm25s = quiet_bm25s()
        from ..query import index_words

        # One string object per distinct word: a catalog's 1.4 million windows hold ~20 million
        # words, which as separate strings would take over a gigabyte while BM25 is built.
        seen: dict[str, str] = {}

        def tokens(text: str) -> list[str]:
            return [seen.setdefault(w, w) for w in index_words(text)] or ["_empty_"]

        bm25 = bm25s.BM25()
        bm25.index([tokens(f"{c.chapter or ''} {c.text}") for c in chunks] or [["_empty_"]], show_progress=False)
        # Lexical small-to-big: a passage's long text dilutes BM25 (length normalisation), so the
        # sentence that repeats the question's rare words is scored on its own too.
        sentence_bm25 = bm25s.BM25()
        sentence_bm25.index([tokens(sentence_window(chunks[ci], si)) for ci, si in rows] or [["_empty_"]],
                            show_progress=False)
        doc_freq: dict[str, int] = {}
        for c in chunks:
            for word in set(index_words(c.text)):
                doc_freq[word] = doc_freq.get(word, 0) + 1
        return cls(bm25, sentence_bm25, doc_freq)

    def passage_scores(self, words: Sequence[str]) -> np.ndarray:
        """BM25 of every passage for the question's words (0 where none occurs)."""
        return self.scores(self.bm25, words)

    def window_scores(self, words: Sequence[str], passage_scores: np.ndarray) -> np.ndarray:
        """BM25 of every sentence window (``passage_scores`` lets a store score only the windows
        of passages that hold a word; here every window is scored)."""
        return self.scores(self.sentence_bm25, words)

    @staticmethod
    def scores(bm25, words: Sequence[str]) -> np.ndarray:
        """``bm25.get_scores(words)`` as float32, summed the faster way: one word's postings name
        each document once, so they add by fancy indexing instead of ``np.add.at`` (bm25s's way,
        ~10x slower: 14 ms a question over the catalog's 1.4 million windows)."""
        index = bm25.scores
        out = np.zeros(int(index["num_docs"]), dtype=np.float32)
        ids = bm25.get_tokens_ids(list(words))
        indptr, indices, data = index["indptr"], index["indices"], index["data"]
        for t in ids:
            start, end = int(indptr[t]), int(indptr[t + 1])
            out[indices[start:end]] += data[start:end]
        if getattr(bm25, "nonoccurrence_array", None) is not None and ids:
            out += bm25.nonoccurrence_array[ids].sum()
        return out

    def save(self, folder: Path) -> None:
        self.bm25.save(str(folder / "bm25"), show_progress=False)
        self.sentence_bm25.save(str(folder / "sentence_bm25"), show_progress=False)
        (folder / "doc_freq.json").write_text(json.dumps(self.doc_freq, ensure_ascii=False))

    @classmethod
    def load(cls, folder: Path) -> "Lexical":
        bm25s = quiet_bm25s()

        def one(sub: str):
            return bm25s.BM25.load(str(folder / sub), mmap=True, show_progress=False)

        return cls(one("bm25"), one("sentence_bm25"), json.loads((folder / "doc_freq.json").read_text()))


def quiet_bm25s():
    """bm25s, with its logger kept to warnings: it sets itself to DEBUG, and once anything has
    configured the root logger (onnxruntime's quantizer does, on import) every build printed
    "DEBUG:bm25s:Building index from tokens"."""
    import logging

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _faiss():
    import faiss

    faiss.omp_set_num_threads(1)  # single queries are faster on one thread on small machines
    return faiss


def _flat_index(vectors: np.ndarray, dim: int):
    faiss = _faiss()
    index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


# From this many passages a question's dense candidates come from an HNSW graph over 8-bit
# vectors (chunks.faiss), rescored exactly, instead of a scan of every passage vector: a scan of
# the catalog's 175,000 reads 270 MB a question (25 ms). Graph parameters, chosen with
# `python bench/ann.py --index catalog` (320 questions, recall@10 of the rescored candidates
# against exact search): M 32 / efConstruction 80 reached 0.933 at efSearch 128 and 0.985 at 512
# (2.3 ms); M 48 / efConstruction 200 reaches 0.986 at 256 and 0.995 at 512 (2.7 ms), built in 72 s.
HNSW_M = 48
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 512
ANN_CANDIDATES = 300  # graph neighbours rescored exactly per question


def ann_index(vectors: np.ndarray, dim: int, progress=None, m: int = HNSW_M,
              ef_construction: int = HNSW_EF_CONSTRUCTION):
    """An HNSW graph (inner product) over 8-bit scalar-quantized passage vectors, built on every
    core in steps so that ``progress(done, total)`` can report."""
    import faiss

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    faiss.omp_set_num_threads(max(1, cores or 1))
    try:
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        sample = np.ascontiguousarray(vectors[:: max(1, len(vectors) // 50_000)], dtype=np.float32)
        index.train(sample)
        step = 10_000
        for start in range(0, len(vectors), step):
            index.add(np.ascontiguousarray(vectors[start:start + step], dtype=np.float32))
            if progress:
                progress(min(start + step, len(vectors)), len(vectors))
        index.hnsw.efSearch = HNSW_EF_SEARCH
        return index
    finally:
        faiss.omp_set_num_threads(1)


def build_index(transcripts: Sequence[Transcript], sources: Sequence[str | Path], *, name: str,
                index_dir: Path, embedder: Embedder, settings: ChunkSettings = ChunkSettings(),
                progress: Progress | None = None) -> Path:
    """Chunk, embed and write a new version of index ``name``; returns its folder.

    Builds of one index are serialized by a lock file in its folder, so concurrent builds each
    publish a complete version and never remove each other's; readers only ever follow CURRENT to
    a complete version.
    """
    check_index_name(name)
    chunks: list[Chunk] = []
    for i, t in enumerate(transcripts):
        chunks.extend(chunk_passages(t, embedder, settings))
        if progress:
            progress("chunk", i + 1, len(transcripts))
    rows = [(ci, si) for ci, c in enumerate(chunks) for si, s in enumerate(c.sentences) if not s.context]
    try:  # before any embedding work: a folder we cannot write fails in a second, not after a build
        (index_dir / ".cache").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise IndexError_(f"cannot write indexes under {index_dir} ({e.strerror or e}); set "
                          "RAG_INDEX_DIR to a folder you can write") from e
    cached = CachedEmbedder(embedder, index_dir / ".cache" / "embeddings.sqlite",
                            note=(lambda message: progress(f"note: {message}", 0, 0)) if progress else None)

    def stage(label, offset=0, total=None):
        if not progress:
            return None
        return lambda done, n: progress(label, offset + done, n if total is None else total)

    root = _index_root(index_dir, name)
    root.mkdir(parents=True, exist_ok=True)
    # Unique even for two builds in the same second of the same process.
    version = f"v-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = root / (version + ".tmp")
    tmp.mkdir()
    try:
        chunk_vecs, sent_vecs = _embed_passages(tmp, chunks, len(rows), cached, embedder.dim, stage)
        words = vocabulary(chunks)
        word_vecs = cached.embed(words, progress=stage("vocabulary"))
        if progress:
            progress("building the BM25 indexes", 0, 0)
        lexical = Lexical.build(chunks, rows)
        graph = ann_index(chunk_vecs, embedder.dim, stage("graph")) if len(chunks) >= ANN_MIN else None
        with _build_lock(root, name, progress):
            return _publish(root, tmp, version, name, chunks, rows, chunk_vecs, graph, words, word_vecs,
                            lexical, transcripts, sources, embedder, settings, cached)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


PASSAGE_GROUP = 2048  # passages embedded, then written to the index's files, at a time


def _embed_passages(folder: Path, chunks: Sequence[Chunk], n_rows: int, cached, dim: int, stage):
    """Passage and sentence-window vectors, appended to ``chunks.npy`` and ``sentences.npy`` as
    they come: a catalog's million windows (1.6 GB) never sit in memory. Returns both files
    memory-mapped.

    One pass per passage gives its vector and its windows' (pooled from its word pieces: see
    ``OnnxMiniLM.encode_spans``), in the order of the sentence rows.
    """
    row = 0
    with open(folder / "chunks.npy", "wb") as cf, open(folder / "sentences.npy", "wb") as sf:
        for f, n in ((cf, len(chunks)), (sf, n_rows)):
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (n, dim)})
        for start in range(0, len(chunks), PASSAGE_GROUP):
            group = chunks[start:start + PASSAGE_GROUP]
            texts, spans = zip(*(window_spans(c) for c in group))
            vectors, pooled = cached.embed_spans(texts, spans, progress=stage("passages", start, len(chunks)))
            cf.write(np.ascontiguousarray(vectors, dtype="<f4").tobytes())
            for block in pooled:
                sf.write(np.ascontiguousarray(block, dtype="<f4").reshape(-1, dim).tobytes())
                row += len(block)
    if row != n_rows:  # a window lost or added: the rows would point at the wrong vectors
        raise IndexError_(f"embedding gave {row} sentence-window vectors for {n_rows} windows")
    return (np.load(folder / "chunks.npy", mmap_mode="r"), np.load(folder / "sentences.npy", mmap_mode="r"))


def _index_root(index_dir: Path, name: str) -> Path:
    """The folder of index ``name``, checked to lie directly inside ``index_dir``."""
    check_index_name(name)
    base = index_dir.resolve()
    root = (base / name).resolve()
    if root.parent != base:
        raise InputError(f"index name {name!r} resolves outside {base}; choose another name")
    return root


@contextlib.contextmanager
def _build_lock(root: Path, name: str, progress: Progress | None):
    """An exclusive lock on ``root/.build.lock`` for the publishing step (POSIX flock; released
    by the kernel if the process dies, so a crashed build never leaves a stale lock)."""
    import fcntl

    with open(root / ".build.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(f"another build of {name} is running; waiting", 0, 0)
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise IndexError_(f"another build of index {name!r} has held its lock for "
                                          f"{LOCK_WAIT_S:.0f} s; wait for it, or stop it and retry") from None
                    time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _publish(root, tmp, version, name, chunks, rows, chunk_vecs, graph, words, word_vecs, lexical,
             transcripts, sources, embedder, settings, cached) -> Path:
    faiss = _faiss()
    ann = graph is not None
    faiss.write_index(graph if ann else _flat_index(chunk_vecs, embedder.dim), str(tmp / "chunks.faiss"))
    np.save(tmp / "sentence_rows.npy", np.array(rows, dtype=np.int32).reshape(-1, 2))
    lexical.save(tmp)
    offsets = [0]
    with open(tmp / "chunks.jsonl", "wb") as f:
        for c in chunks:
            offsets.append(offsets[-1] + f.write((json.dumps(c.to_record(), ensure_ascii=False) + "\n").encode()))
    np.save(tmp / "chunk_offsets.npy", np.array(offsets, dtype=np.int64))
    Columns.build(chunks, rows).save(tmp / "columns.npz")
    episodes = []
    with open(tmp / "transcripts.json", "w") as f:  # one transcript at a time: a catalog's is 300 MB
        f.write("[")
        for i, t in enumerate(transcripts):
            record = t.to_json()
            f.write(("," if i else "") + json.dumps(record, ensure_ascii=False))
            episodes.append({k: v for k, v in record.items() if k != "turns"})
        f.write("]")
    (tmp / "episodes.json").write_text(json.dumps(episodes, ensure_ascii=False))
    (tmp / "vocabulary.json").write_text(json.dumps(words, ensure_ascii=False))
    np.save(tmp / "vocabulary.npy", word_vecs.astype(np.float16))  # similarities need no more precision
    manifest = {
        "format": FORMAT,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": embedder.name,
        "dim": embedder.dim,
        "chunker": settings.to_json(),
        "sources": [{"path": str(Path(s).resolve()), "sha256": sha256_file(s)} for s in sources],
        "episodes": [t.episode.id for t in transcripts],
        "chunks": len(chunks),
        "sentences": len(rows),
        "vocabulary": len(words),
        "ann": {"kind": "HNSW,SQ8", "m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION} if ann else None,
        "embedding_cache": {"reused": cached.hits, "embedded": cached.misses, "notes": cached.notes},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    final = root / version
    os.replace(tmp, final)
    _write_atomic(root / "CURRENT", version)
    _remove_old_versions(root, keep=version)
    return final


def _remove_old_versions(root: Path, *, keep: str) -> None:
    """Remove the version folders this store wrote in ``root`` other than ``keep``.

    Only names a build itself creates (``VERSION_DIR``), only directly inside ``root`` (checked by
    resolved path, so a symlink cannot point the removal elsewhere), and never a ``.tmp`` that may
    belong to a build still running (less than an hour old). Runs under the build lock.
    """
    for old in root.iterdir():
        if old.name == keep or not VERSION_DIR.fullmatch(old.name) or old.is_symlink() or not old.is_dir():
            continue
        if old.resolve().parent != root:
            continue
        if old.name.endswith(".tmp") and time.time() - old.stat().st_mtime < 3600:
            continue
        shutil.rmtree(old, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.new")
    tmp.write_text(text)
    os.replace(tmp, path)


def check_manifest(manifest: dict, *, name: str, model: str, settings: ChunkSettings,
                   sources: Sequence[str | Path] | None = None) -> str | None:
    """Why the index cannot be used as it is, or None when it matches."""
    if manifest.get("format") != FORMAT:
        return f"it was written in format {manifest.get('format')!r}, this version reads {FORMAT!r}"
    if manifest.get("model") != model:
        return f"it was built with model {manifest.get('model')!r}, but {model!r} is configured"
    if manifest.get("chunker") != settings.to_json():
        return "it was built with different chunker settings"
    if sources is not None:
        recorded = sorted(s["sha256"] for s in manifest.get("sources", []))
        current = sorted(sha256_file(s) for s in sources)
        if recorded != current:
            return "its source transcripts have changed since it was built"
    else:
        for s in manifest.get("sources", []):
            p = Path(s["path"])
            if p.exists() and sha256_file(p) != s["sha256"]:
                return f"its source {p} has changed since it was built"
    return None


def rebuild_command(manifest: dict, name: str, paths: Sequence[str] | None = None) -> str:
    """The exact command that rebuilds index ``name`` from the sources its manifest records."""
    if paths is None:
        paths = [s["path"] for s in manifest.get("sources", []) if isinstance(s, dict) and "path" in s]
    return shlex.join(["rag", "index", *paths, "--name", name]) if paths else \
        f"rag index SOURCES... --name {name}"


def missing_sources(manifest: dict) -> list[str]:
    """The recorded source paths that no longer exist."""
    return [s["path"] for s in manifest.get("sources", [])
            if isinstance(s, dict) and "path" in s and not Path(s["path"]).exists()]


def missing_note(stored: "StoredIndex") -> str | None:
    """A note for an index some of whose sources are gone (it is still used as built)."""
    missing = missing_sources(stored.manifest)
    if not missing:
        return None
    kept = [s["path"] for s in stored.manifest.get("sources", []) if s.get("path") not in missing]
    then = (f"rebuild it from the rest with: {rebuild_command(stored.manifest, stored.name, kept)}"
            if kept else "restore the file to rebuild it")
    return (f"index {stored.name!r} was built from {', '.join(missing)}, which no longer "
            f"exist{'s' if len(missing) == 1 else ''}; answers come from the index as built; "
            f"{then}")


def index_exists(index_dir: Path, name: str) -> bool:
    return (_index_root(index_dir, name) / "CURRENT").exists()


def unchanged_sources(index_dir: Path, name: str) -> list[Path] | None:
    """The sources index ``name`` was built from, when every one still exists unchanged; else None.

    An index whose only problem is the model or the chunker (a new adapter, a new format) can then
    rebuild itself from them: nothing the user gave has changed.
    """
    root = _index_root(index_dir, name)
    try:
        version = (root / "CURRENT").read_text().strip()
        if not VERSION_DIR.fullmatch(version):
            return None
        recorded = json.loads((root / version / "manifest.json").read_text()).get("sources") or []
        paths = [Path(s["path"]) for s in recorded]
        if not paths or any(not p.is_file() or sha256_file(p) != s["sha256"] for p, s in zip(paths, recorded)):
            return None
        return paths
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def load_index(index_dir: Path, name: str, *, model: str, settings: ChunkSettings = ChunkSettings(),
               sources: Sequence[str | Path] | None = None) -> StoredIndex:
    """Load index ``name``; raise IndexNotFound / StaleIndex with the command that fixes it."""
    root = _index_root(index_dir, name)
    rebuild = f"rebuild it with: rag index SOURCES... --name {name}"
    if not (root / "CURRENT").exists():
        raise IndexNotFound(f"no index named {name!r} in {index_dir}; build it with: "
                            f"rag index SOURCES... --name {name}")
    version = (root / "CURRENT").read_text().strip()
    if not VERSION_DIR.fullmatch(version) or version.endswith(".tmp"):
        raise StaleIndex(f"index {name!r} is corrupt (CURRENT names {version[:40]!r}); {rebuild}")
    path = root / version
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as e:
        raise StaleIndex(f"index {name!r} is corrupt (manifest unreadable: {e}); {rebuild}") from e
    rebuild = f"rebuild it with: {rebuild_command(manifest, name)}"
    problem = check_manifest(manifest, name=name, model=model, settings=settings, sources=sources)
    if problem:
        raise StaleIndex(f"index {name!r} is stale: {problem}; {rebuild}")
    try:
        chunk_vecs = np.load(path / "chunks.npy", mmap_mode="r")
        sent_vecs = np.load(path / "sentences.npy", mmap_mode="r")
        sentence_rows = np.load(path / "sentence_rows.npy")
        chunks = ChunkTable(path / "chunks.jsonl", np.load(path / "chunk_offsets.npy"))
        columns = Columns.load(path / "columns.npz")
        ann = None
        if manifest.get("ann"):
            ann = _faiss().read_index(str(path / "chunks.faiss"))
            ann.hnsw.efSearch = HNSW_EF_SEARCH
        transcripts = tuple(json.loads((path / "episodes.json").read_text()))
        words = tuple(json.loads((path / "vocabulary.json").read_text()))
        word_vecs = np.load(path / "vocabulary.npy").astype(np.float32)
        lexical = Lexical.load(path)
    except Exception as e:  # noqa: BLE001 - numpy raises ValueError, json ValueError, bm25s ...
        raise StaleIndex(f"index {name!r} is corrupt ({type(e).__name__}: {e}); {rebuild}") from e
    dim = manifest.get("dim")
    if (chunk_vecs.shape != (len(chunks), dim) or sent_vecs.shape != (len(sentence_rows), dim)
            or len(chunks) != manifest.get("chunks") or word_vecs.shape != (len(words), dim)
            or len(columns.episode) != len(chunks) or len(columns.sentence_speaker) != len(sentence_rows)
            or (ann is not None and ann.ntotal != len(chunks))
            or chunk_vecs.dtype != np.float32 or sent_vecs.dtype != np.float32):
        raise StaleIndex(f"index {name!r} is corrupt (its files disagree with its manifest); {rebuild}")
    return StoredIndex(name, path, manifest, chunks, columns, chunk_vecs, sent_vecs, sentence_rows, transcripts,
                       words, word_vecs, lexical, ann)
