"""Indexes in PostgreSQL with pgvector: one database that several `rag serve` replicas share.

Chosen with ``RAG_DATABASE_URL=postgresql://...``; the ranking is ``retrieval.Retriever``'s, the
same as over files. What differs is where passages live and how candidates are found:

- dense: the ``ANN_CANDIDATES`` nearest by pgvector's HNSW index (a partial index per rag index,
  inner product), or an exact scan inside a narrow filter;
- lexical: BM25 over stored term statistics: ``postings`` (word, passage, count, passage length)
  and ``episode_terms`` (how many of an episode's passages, windows and passage texts use each
  word), summed in SQL with the same formula and constants as bm25s, so the scores equal the file
  store's.

Tables (``MIGRATIONS``; ``schema_version`` records what is applied):

    indexes      one row an index: model, dimension, chunker
    episodes     one row an episode: metadata and chapters, its turns, a hash of what it was
                 built from (an unchanged episode is skipped on a rerun), its BM25 totals and a
                 generation number from a sequence (replicas reload when the newest moves)
    passages     one row a passage: the chunk, its vector, its sentence windows' vectors
                 (float32 bytes), speakers, sentence numbers and BM25 words
    episode_terms  (episode, word) -> its passages / windows / passage texts using the word
    postings     BM25's inverted lists
    words        the vocabulary with its vectors: what a question word no passage uses comes
                 closest to

Writes: each episode is one transaction. It appears whole or not at all, and re-indexing it
replaces it in one commit. Every statistic is stored per episode and summed when read, so a
write only inserts its own rows (and deletes its old version): indexers of different episodes
share no row, never wait on each other and never deadlock. The embedding, the slow part, runs
outside any transaction. Readers use MVCC snapshots and never wait on a writer.

Reads: each question reads in one REPEATABLE READ, READ ONLY snapshot. What retrieval reads of
every passage (episode, show, chapter, times, window speakers) is loaded into memory at open, as
the file store's ``columns.npz`` is; a passage the snapshot holds but that list does not (an
episode added since) is left out until the replica reloads.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import ChunkSettings, Config
from ..errors import IndexNotFound, RagError, StaleIndex, StoreUnavailable
from ..types import Chunk, Transcript
from .passages import ANN_MIN, Columns, check_index_name, chunk_passages, sentence_window, vocabulary, window_spans

FORMAT = "rag-pg/1"
SCHEMA_VERSION = 1
BM25_K1, BM25_B = 1.5, 0.75     # bm25s's defaults: the file store's BM25
HNSW_M = 16                     # pgvector's defaults (see docs/scaling.md for the measurements)
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 400            # at most 1000; above ANN_CANDIDATES so that LIMIT is met
DOWN_WAIT_S = 0.1               # how long a request waits for a connection while the database is down
WINDOW_PASSAGES = 300           # windows BM25-scored: those of the passages BM25 ranks highest

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "indexes, episodes, passages, BM25 terms and postings, vocabulary", [
        "CREATE EXTENSION IF NOT EXISTS vector",
        """CREATE TABLE indexes (
            id serial PRIMARY KEY,
            name text UNIQUE NOT NULL,
            model text NOT NULL,
            dim int NOT NULL,
            chunker jsonb NOT NULL,
            created timestamptz NOT NULL DEFAULT now())""",
        "CREATE SEQUENCE generations",
        """CREATE TABLE episodes (
            id bigserial PRIMARY KEY,
            index_id int NOT NULL REFERENCES indexes ON DELETE CASCADE,
            episode text NOT NULL,
            show text NOT NULL DEFAULT '',
            record jsonb NOT NULL,                     -- metadata and chapters
            transcript jsonb NOT NULL,                 -- with its turns
            source text NOT NULL DEFAULT '',
            built_from text NOT NULL,                  -- hash of transcript, model and chunker
            generation bigint NOT NULL DEFAULT nextval('generations'),
            passages int NOT NULL,                     -- BM25: documents and their total length
            passage_words int NOT NULL,
            windows int NOT NULL,
            window_words int NOT NULL,
            indexed_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (index_id, episode))""",
        """CREATE TABLE passages (
            id bigserial PRIMARY KEY,
            index_id int NOT NULL,
            episode_id bigint NOT NULL REFERENCES episodes ON DELETE CASCADE,
            ord int NOT NULL,
            record jsonb NOT NULL,                     -- the Chunk
            chapter text NOT NULL DEFAULT '',
            start_s float8 NOT NULL,
            end_s float8 NOT NULL,
            embedding vector NOT NULL,
            windows bytea NOT NULL,                    -- float32 (windows, dim)
            window_sentences int[] NOT NULL,
            window_speakers text[] NOT NULL,
            words int NOT NULL,                        -- BM25 length
            window_terms jsonb NOT NULL)""",           # each window's BM25 words
        "CREATE INDEX passages_episode ON passages (episode_id)",
        "CREATE INDEX passages_index ON passages (index_id, id)",
        """CREATE TABLE episode_terms (
            index_id int NOT NULL,
            episode_id bigint NOT NULL REFERENCES episodes ON DELETE CASCADE,
            term text NOT NULL,
            df int NOT NULL,                           -- passages using it (BM25 words)
            window_df int NOT NULL,                    -- sentence windows using it
            text_df int NOT NULL,                      -- passage texts using it (coverage)
            PRIMARY KEY (episode_id, term))""",
        "CREATE INDEX episode_terms_term ON episode_terms (index_id, term) INCLUDE (df, window_df, text_df)",
        """CREATE TABLE postings (
            index_id int NOT NULL,
            term text NOT NULL,
            passage_id bigint NOT NULL REFERENCES passages ON DELETE CASCADE,
            tf int NOT NULL,
            words int NOT NULL)""",
        "CREATE INDEX postings_term ON postings (index_id, term) INCLUDE (passage_id, tf, words)",
        "CREATE INDEX postings_passage ON postings (passage_id)",
        """CREATE TABLE words (
            index_id int NOT NULL REFERENCES indexes ON DELETE CASCADE,
            word text NOT NULL,
            vector bytea NOT NULL,                     -- float16 (dim)
            PRIMARY KEY (index_id, word))""",
    ]),
]


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        parts = conninfo_to_dict(url)
        host = parts.get("host", "localhost")
        return f"postgresql://{parts.get('user', '')}@{host}:{parts.get('port', 5432)}/{parts.get('dbname', '')}"
    except Exception:  # noqa: BLE001 - only for a message
        return "the configured database"


class Database:
    """A connection pool to one PostgreSQL; every failure to reach it is a StoreUnavailable."""

    def __init__(self, url: str, *, pool_size: int = 4, timeout: float = 2.0):
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as e:
            raise RagError("RAG_DATABASE_URL needs psycopg: pip install 'rag-interview[postgres]'") from e
        self.url, self.where, self.timeout, self.size = url, safe_url(url), timeout, pool_size
        self.down_since: float | None = None   # when a connection last failed, until one works
        self.reached = False                   # whether any connection has ever been opened
        self.pool = self._make_pool()

    def _make_pool(self):
        from psycopg_pool import ConnectionPool

        def configure(conn):
            self.reached = True
            conn.autocommit = True
            if conn.execute("SELECT to_regtype('vector') IS NOT NULL").fetchone()[0]:
                from pgvector.psycopg import register_vector

                register_vector(conn)
                conn.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
            # A statement stuck behind a lock fails (and frees its connection) instead of hanging.
            conn.execute(f"SET statement_timeout = {int(max(5.0, 5 * self.timeout) * 1000)}")

        pool = ConnectionPool(self.url, min_size=1, max_size=self.size, timeout=self.timeout, open=False,
                              kwargs={"connect_timeout": max(1, math.ceil(self.timeout))},
                              configure=configure, check=ConnectionPool.check_connection,
                              # Give up a reconnection (its backoff doubles) after 10 s: the next
                              # request starts a fresh one, so a long outage still ends in seconds.
                              reconnect_timeout=10.0)
        pool.open(wait=False)
        return pool

    def unavailable(self, err: BaseException) -> StoreUnavailable:
        """The 503 for a failed statement or connection; a lost connection marks the database down."""
        import psycopg

        if not isinstance(err, psycopg.errors.QueryCanceled):
            self.down_since = self.down_since or time.monotonic()
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return StoreUnavailable(f"the database at {self.where} is unavailable ({reason[:200]}); "
                                "check that it is running and reachable, then retry (rag db status)")

    @contextlib.contextmanager
    def connection(self):
        import psycopg
        from psycopg_pool import PoolTimeout

        # Once the database has failed, requests wait only briefly for a connection until one
        # works again: they fail fast while it is down, and the pool reconnects in the background.
        down = self.down_since
        try:
            with self.pool.connection(timeout=self.timeout if down is None else DOWN_WAIT_S) as conn:
                yield conn
            self.down_since = None
        except PoolTimeout as e:
            if not self.reached:
                raise StoreUnavailable(f"cannot connect to the database at {self.where} within "
                                       f"{self.timeout:g} s; check that it is running and that "
                                       "RAG_DATABASE_URL names it") from e
            if down is not None:
                raise StoreUnavailable(f"the database at {self.where} has been unreachable for "
                                       f"{time.monotonic() - down:.0f} s; retry shortly (it reconnects "
                                       "by itself)") from e
            raise StoreUnavailable(f"the database at {self.where} gave no free connection within "
                                   f"{self.timeout:g} s (all {self.pool.max_size} busy, or it is "
                                   "down); retry, or raise RAG_DB_POOL") from e
        except psycopg.OperationalError as e:
            raise self.unavailable(e) from e

    # --- schema ------------------------------------------------------------------------------

    def version(self, conn) -> int:
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def migrate(self) -> list[int]:
        """Apply the migrations this database lacks, each in a transaction; returns their numbers.
        An advisory lock keeps two processes from migrating at once."""
        applied = []
        with self.connection() as conn:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(7414260)")
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, "
                             "note text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
                have = self.version(conn)
                if have > SCHEMA_VERSION:
                    raise StaleIndex(f"the database at {self.where} has schema version {have}; this "
                                     f"rag knows {SCHEMA_VERSION}: upgrade rag")
                for number, note, statements in MIGRATIONS:
                    if number > have:
                        for sql in statements:
                            conn.execute(sql)
                        conn.execute("INSERT INTO schema_version (version, note) VALUES (%s, %s)", (number, note))
                        applied.append(number)
        if applied:  # connections opened before the vector type existed lack its adapter
            old, self.pool = self.pool, self._make_pool()
            old.close()
        return applied

    def check_schema(self, conn) -> None:
        have = self.version(conn)
        if have != SCHEMA_VERSION:
            raise StaleIndex(f"the database at {self.where} has schema version {have}, this rag "
                             f"reads {SCHEMA_VERSION}; run: rag db migrate")

    def status(self) -> dict:
        """What the database holds: schema, and each index's episodes, passages and sizes."""
        with self.connection() as conn:
            version = self.version(conn)
            out = {"database": self.where, "schema_version": version, "schema_current": SCHEMA_VERSION,
                   "indexes": []}
            if version == 0:
                return out
            rows = conn.execute(
                "SELECT i.name, i.model, count(e.id), coalesce(sum(e.passages), 0), coalesce(sum(e.windows), 0), "
                "coalesce(max(e.generation), 0), coalesce(max(e.indexed_at), i.created) FROM indexes i "
                "LEFT JOIN episodes e ON e.index_id = i.id GROUP BY i.id ORDER BY i.name").fetchall()
            for name, model, episodes, passages, windows, gen, updated in rows:
                out["indexes"].append({"name": name, "model": model, "episodes": episodes,
                                       "passages": int(passages), "windows": int(windows), "generation": gen,
                                       "updated": updated.isoformat(timespec="seconds")})
            sizes = conn.execute(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r' "
                "AND c.relname IN ('indexes','episodes','passages','episode_terms','postings','words')").fetchall()
            out["tables_bytes"] = dict(sorted(sizes))
            out["hnsw_bytes"] = dict(conn.execute(
                "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_am a ON a.oid = c.relam "
                "WHERE a.amname = 'hnsw' ORDER BY 1").fetchall())
        return out


_databases: dict[tuple, Database] = {}
_lock = threading.Lock()


def database(config: Config) -> Database:
    """One pool per (URL, size, timeout) in a process."""
    key = (config.database_url, config.db_pool, config.db_timeout)
    with _lock:
        db = _databases.get(key)
        if db is None:
            db = _databases[key] = Database(config.database_url, pool_size=config.db_pool,
                                            timeout=config.db_timeout)
        return db


# --- writing -----------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    from ..query import index_words

    return index_words(text) or ["_empty_"]


@dataclass(frozen=True)
class _Passage:
    chunk: Chunk
    vector: np.ndarray
    windows: np.ndarray
    sentences: list[int]
    speakers: list[str]
    terms: list[str]             # BM25 words, with repeats
    window_terms: list[list[str]]
    text_terms: list[str]        # distinct


def _prepare(chunks: Sequence[Chunk], vectors, pooled) -> list[_Passage]:
    from ..query import index_words

    out = []
    for c, v, w in zip(chunks, vectors, pooled):
        own = [i for i, s in enumerate(c.sentences) if not s.context]
        out.append(_Passage(
            chunk=c, vector=np.asarray(v, dtype=np.float32), windows=np.asarray(w, dtype=np.float32),
            sentences=own, speakers=[c.sentences[i].speaker for i in own],
            terms=_tokens(f"{c.chapter or ''} {c.text}"),
            window_terms=[_tokens(sentence_window(c, i)) for i in own],
            text_terms=sorted(set(index_words(c.text)))))
    return out


def built_from(transcript: Transcript, model: str, settings: ChunkSettings) -> str:
    payload = json.dumps([transcript.to_json(), model, settings.to_json()], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def write_index(transcripts: Sequence[Transcript], sources: Sequence[str | Path], *, name: str,
                config: Config, embedder, progress=None) -> dict:
    """Write ``transcripts`` into index ``name`` of the configured database, an episode a
    transaction. An episode already there from the same transcript, model and chunker is
    skipped; a changed one is replaced. Returns counts of what was written."""
    from ..embedding import CachedEmbedder

    check_index_name(name)
    db = database(config)
    db.migrate()
    (config.index_dir / ".cache").mkdir(parents=True, exist_ok=True)
    cached = CachedEmbedder(embedder, config.index_dir / ".cache" / "embeddings.sqlite")
    ix = _index_row(db, name, embedder, config.chunking)
    with db.connection() as conn:
        have = dict(conn.execute("SELECT episode, built_from FROM episodes WHERE index_id = %s", (ix,)).fetchall())
    # Where each episode came from: its own file, or the one folder or archive given.
    source_of = {Path(s).stem: str(Path(s).resolve()) for s in sources}
    only = str(Path(sources[0]).resolve()) if len(sources) == 1 else ""
    todo = [t for t in transcripts if have.get(t.episode.id) != built_from(t, embedder.name, config.chunking)]
    counts = {"episodes": 0, "unchanged": len(transcripts) - len(todo), "passages": 0, "replaced": 0}
    words_seen: set[str] = set()
    for n, t in enumerate(todo):
        ep = t.episode
        chunks = chunk_passages(t, embedder, config.chunking)
        if chunks:
            texts, spans = zip(*(window_spans(c) for c in chunks))
            vectors, pooled = cached.embed_spans(list(texts), list(spans))
        else:
            vectors, pooled = np.zeros((0, embedder.dim), np.float32), []
        passages = _prepare(chunks, vectors, pooled)
        replaced = _write_episode(db, ix, t, passages, source_of.get(ep.id, only),
                                  built_from(t, embedder.name, config.chunking))
        counts["episodes"] += 1
        counts["replaced"] += replaced
        counts["passages"] += len(passages)
        words_seen.update(vocabulary(chunks))
        if progress:
            progress("episodes", n + 1, len(todo))
    _write_words(db, ix, sorted(words_seen), cached, progress)
    return {**counts, "name": name, "database": db.where}


def _index_row(db: Database, name: str, embedder, settings: ChunkSettings) -> int:
    with db.connection() as conn, conn.transaction():
        row = conn.execute("SELECT id, model, dim, chunker FROM indexes WHERE name = %s FOR UPDATE", (name,)).fetchone()
        if row is None:
            ix = conn.execute("INSERT INTO indexes (name, model, dim, chunker) VALUES (%s, %s, %s, %s) "
                              "ON CONFLICT (name) DO NOTHING RETURNING id",
                              (name, embedder.name, embedder.dim, json.dumps(settings.to_json()))).fetchone()
            if ix is None:  # another indexer created it a moment ago
                return _index_row(db, name, embedder, settings)
            # A partial HNSW index per rag index: the planner uses it for this index's questions.
            conn.execute(f"CREATE INDEX passages_hnsw_{ix[0]} ON passages USING hnsw "
                         f"((embedding::vector({int(embedder.dim)})) vector_ip_ops) "
                         f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) "
                         f"WHERE index_id = {ix[0]}")
            return ix[0]
        ix, model, dim, chunker = row
        if model != embedder.name or chunker != settings.to_json():
            what = f"model {model!r}" if model != embedder.name else "other chunker settings"
            raise StaleIndex(f"index {name!r} in {db.where} was built with {what}; drop it and index "
                             f"again: rag db drop {name}")
        return ix


def _write_episode(db: Database, ix: int, t: Transcript, passages: list[_Passage], source: str,
                   digest: str) -> bool:
    """One transaction: the old version of the episode out (its passages, postings and term counts
    go with it), the new one in. Returns whether an old version was replaced."""
    from psycopg.types.json import Jsonb

    record = t.to_json()
    meta = {k: v for k, v in record.items() if k != "turns"}
    df: Counter = Counter()
    window_df: Counter = Counter()
    text_df: Counter = Counter()
    for p in passages:
        df.update(set(p.terms))
        for window in p.window_terms:
            window_df.update(set(window))
        text_df.update(p.text_terms)
    with db.connection() as conn, conn.transaction():
        old = conn.execute("DELETE FROM episodes WHERE index_id = %s AND episode = %s RETURNING id",
                           (ix, t.episode.id)).fetchone()
        ep = conn.execute(
            "INSERT INTO episodes (index_id, episode, show, record, transcript, source, built_from, passages, "
            "passage_words, windows, window_words) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (ix, t.episode.id, t.episode.show, Jsonb(meta), Jsonb(record), source, digest, len(passages),
             sum(len(p.terms) for p in passages), sum(len(p.window_terms) for p in passages),
             sum(len(w) for p in passages for w in p.window_terms))).fetchone()[0]
        ids = [r[0] for r in conn.execute(
            "SELECT nextval('passages_id_seq') FROM generate_series(1, %s)", (len(passages),))] if passages else []
        with conn.cursor().copy(
                "COPY passages (id, index_id, episode_id, ord, record, chapter, start_s, end_s, embedding, "
                "windows, window_sentences, window_speakers, words, window_terms) FROM STDIN") as copy:
            for pid, (n, p) in zip(ids, enumerate(passages)):
                c = p.chunk
                copy.write_row((pid, ix, ep, n, Jsonb(c.to_record()), c.chapter or "", c.start_s, c.end_s,
                                p.vector, p.windows.astype("<f4").tobytes(), p.sentences, p.speakers,
                                len(p.terms), Jsonb(p.window_terms)))
        with conn.cursor().copy("COPY postings (index_id, term, passage_id, tf, words) FROM STDIN") as copy:
            for pid, p in zip(ids, passages):
                for w, tf in Counter(p.terms).items():
                    copy.write_row((ix, w, pid, tf, len(p.terms)))
        with conn.cursor().copy("COPY episode_terms (index_id, episode_id, term, df, window_df, text_df) "
                                "FROM STDIN") as copy:
            for w in sorted(df.keys() | window_df.keys() | text_df.keys()):
                copy.write_row((ix, ep, w, df[w], window_df[w], text_df[w]))
        committing(t.episode.id)
    return bool(old)


def committing(episode: str) -> None:
    """Called as an episode's transaction is about to commit: the tests hold or fail a writer here."""


def _write_words(db: Database, ix: int, words: list[str], cached, progress) -> None:
    """The vocabulary's new words with their vectors (words already there keep theirs)."""
    if not words:
        return
    with db.connection() as conn:
        known = {w for (w,) in conn.execute("SELECT word FROM words WHERE index_id = %s AND word = ANY(%s)",
                                            (ix, words))}
    new = [w for w in words if w not in known]
    if not new:
        return
    vectors = cached.embed(new, progress=(lambda d, n: progress("vocabulary", d, n)) if progress else None)
    with db.connection() as conn, conn.transaction():
        with conn.cursor().copy("COPY words (index_id, word, vector) FROM STDIN") as copy:
            for w, v in zip(new, vectors):
                copy.write_row((ix, w, np.asarray(v, dtype="<f2").tobytes()))


def drop_index(config: Config, name: str) -> bool:
    check_index_name(name)
    db = database(config)
    db.migrate()
    with db.connection() as conn, conn.transaction():
        row = conn.execute("DELETE FROM indexes WHERE name = %s RETURNING id", (name,)).fetchone()
        if row:  # episodes, passages, postings and term counts go with it (ON DELETE CASCADE)
            conn.execute(f"DROP INDEX IF EXISTS passages_hnsw_{int(row[0])}")
    return row is not None


# --- reading -----------------------------------------------------------------------------------


class _Snapshot(threading.local):
    conn = None
    vectors: dict
    chunks: dict


class PgChunks(Sequence):
    """The passages by row, read in the question's snapshot and kept for the rest of it."""

    def __init__(self, index: "PgIndex"):
        self.index = index

    def __len__(self) -> int:
        return len(self.index.ids)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if not 0 <= i < len(self):
            raise IndexError(f"passage {i} of {len(self)}")
        found = self.index.fetch_chunks([i])
        if i not in found:
            raise StaleIndex(f"passage {i} of index {self.index.name!r} was removed while it was read; retry")
        return found[i]

    def __iter__(self):
        for start in range(0, len(self), 1000):
            rows = list(range(start, min(start + 1000, len(self))))
            found = self.index.fetch_chunks(rows)
            yield from (found[r] for r in rows if r in found)


@dataclass
class PgLexical:
    index: "PgIndex"
    doc_freq: dict

    def passage_scores(self, words: Sequence[str]) -> np.ndarray:
        """BM25 (bm25s's Lucene variant) of every passage, summed in the database."""
        ix = self.index
        out = np.zeros(len(ix.ids), dtype=np.float32)
        rows = ix.query(
            "WITH totals AS (SELECT sum(passages)::float8 AS n, greatest(sum(passage_words), 1)::float8 / "
            "greatest(sum(passages), 1) AS avgdl FROM episodes WHERE index_id = %(ix)s), "
            "asked AS (SELECT term, count(*) AS times FROM unnest(%(words)s::text[]) AS w(term) GROUP BY term), "
            "df AS (SELECT t.term, sum(t.df) AS df FROM episode_terms t JOIN asked USING (term) "
            "WHERE t.index_id = %(ix)s GROUP BY t.term), "
            "q AS (SELECT df.term, asked.times * ln(1 + (totals.n - df.df + 0.5) / (df.df + 0.5)) AS idf "
            "FROM df JOIN asked USING (term), totals WHERE df.df > 0) "
            "SELECT p.passage_id, sum(q.idf * p.tf / (%(k1)s * (1 - %(b)s + %(b)s * p.words / totals.avgdl) + p.tf)) "
            "FROM q JOIN postings p ON p.index_id = %(ix)s AND p.term = q.term, totals GROUP BY p.passage_id",
            {"ix": ix.ix, "words": list(words), "k1": BM25_K1, "b": BM25_B})
        if rows:
            ids, scores = zip(*rows)
            where, known = ix.rows_of(np.array(ids, dtype=np.int64))
            out[where] = np.asarray(scores, dtype=np.float32)[known]
        return out

    def window_scores(self, words: Sequence[str], passage_scores: np.ndarray) -> np.ndarray:
        """BM25 of the sentence windows of the passages BM25 ranks highest (a window can score
        only where its passage does); the others' are 0."""
        ix = self.index
        out = np.zeros(len(ix.sentence_rows), dtype=np.float32)
        held = np.flatnonzero(passage_scores)
        if not len(held):
            return out
        if len(held) > WINDOW_PASSAGES:
            held = held[np.argpartition(-passage_scores[held], WINDOW_PASSAGES)[:WINDOW_PASSAGES]]
        (n, total), = ix.query("SELECT coalesce(sum(windows), 0), coalesce(sum(window_words), 0) "
                               "FROM episodes WHERE index_id = %s", (ix.ix,))
        df = dict(ix.query("SELECT term, sum(window_df) FROM episode_terms WHERE index_id = %s AND "
                           "term = ANY(%s) GROUP BY term", (ix.ix, list(set(words)))))
        avgdl = max(total, 1) / max(n, 1)
        idf = {w: math.log(1 + (n - df[w] + 0.5) / (df[w] + 0.5)) for w in words if df.get(w)}
        if not idf:
            return out
        found = ix.by_row(ix.query("SELECT id, window_terms FROM passages WHERE id = ANY(%s)",
                                   (ix.ids[held].tolist(),)))
        for r, (window_terms,) in found.items():
            base = int(ix.sent_start[r])
            for k, terms in enumerate(window_terms):
                tf = Counter(terms)
                norm = BM25_K1 * (1 - BM25_B + BM25_B * len(terms) / avgdl)
                out[base + k] = sum(idf[w] * tf[w] / (norm + tf[w]) for w in words if w in idf and tf[w])
        return out


@dataclass
class PgIndex:
    """An index in the database, as retrieval reads it (see ``stores.Store``)."""

    db: Database
    name: str
    ix: int
    manifest: dict
    ids: np.ndarray                 # passage id of each row, ascending
    columns: Columns
    sentence_rows: np.ndarray
    sent_start: np.ndarray
    transcripts: tuple[dict, ...]
    vocabulary: tuple[str, ...]
    vocabulary_vectors: np.ndarray
    generation: tuple[int, int]
    chunks: PgChunks = None
    lexical: PgLexical = None
    _sample: np.ndarray = None
    _snap: _Snapshot = field(default_factory=_Snapshot)

    path = None  # no folder

    @property
    def model(self) -> str:
        return self.manifest["model"]

    @property
    def large(self) -> bool:
        return len(self.ids) >= ANN_MIN

    @property
    def scans(self) -> bool:
        return False

    # --- the snapshot a question reads in ----------------------------------------------------

    @contextlib.contextmanager
    def reading(self):
        if self._snap.conn is not None:  # nested: the outer snapshot holds
            yield self
            return
        with self.db.connection() as conn:
            try:
                import psycopg

                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                self._snap.conn, self._snap.vectors, self._snap.chunks = conn, {}, {}
                try:
                    yield self
                finally:
                    self._snap.conn = None
                    with contextlib.suppress(psycopg.Error):
                        conn.execute("COMMIT")
            except psycopg.OperationalError as e:
                raise self.db.unavailable(e) from e

    def query(self, sql: str, params=None) -> list[tuple]:
        """Rows of ``sql`` in the question's snapshot (or on a connection of its own), in the
        binary protocol: vectors as float32 bytes, not text to parse (4x faster to fetch)."""
        import psycopg

        def run(conn):
            try:
                return conn.cursor(binary=True).execute(sql, params).fetchall()
            except psycopg.OperationalError as e:
                raise self.db.unavailable(e) from e

        if self._snap.conn is not None:
            return run(self._snap.conn)
        with self.db.connection() as conn:
            return run(conn)

    def by_row(self, found: list[tuple]) -> dict[int, tuple]:
        """``(passage id, ...)`` rows keyed by the row number of their passage (unknown ids left out)."""
        if not found:
            return {}
        rows, known = self.rows_of(np.array([f[0] for f in found], dtype=np.int64))
        return {int(r): f[1:] for r, f in zip(rows, (f for f, k in zip(found, known) if k))}

    def rows_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows of passage ``ids``, and which of the ids this snapshot of the index knows."""
        where = np.searchsorted(self.ids, ids)
        where = np.minimum(where, max(len(self.ids) - 1, 0))
        known = (self.ids[where] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        return where[known], known

    # --- what retrieval reads ----------------------------------------------------------------

    def nearest(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
        dim = int(self.manifest["dim"])
        vec = f"embedding::vector({dim})"
        if allowed is not None and not allowed.all():
            # A narrow filter: an exact scan of what it admits (the graph would filter after
            # its search and come back short).
            ids = self.query(f"WITH c AS MATERIALIZED (SELECT id, {vec} AS e FROM passages WHERE id = ANY(%s)) "
                             f"SELECT id FROM c ORDER BY e <#> %s::vector({dim}) LIMIT %s",
                             (self.ids[allowed].tolist(), np.asarray(q, np.float32), k))
        else:
            ids = self.query(f"SELECT id FROM passages WHERE index_id = {self.ix} "
                             f"ORDER BY {vec} <#> %s::vector({dim}) LIMIT %s", (np.asarray(q, np.float32), k))
        rows, _ = self.rows_of(np.array([i for (i,) in ids], dtype=np.int64))
        return rows

    def passage_vectors(self, rows) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        cache = self._snap.vectors if self._snap.conn is not None else {}
        need = [int(r) for r in rows if int(r) not in cache]
        if need:
            found = self.query("SELECT id, embedding FROM passages WHERE id = ANY(%s)", (self.ids[need].tolist(),))
            cache.update((r, _array(v)) for r, (v,) in self.by_row(found).items())
        dim = int(self.manifest["dim"])
        # A row whose passage vanished (re-indexed since this replica loaded) scores as nothing.
        return np.stack([cache.get(int(r), np.zeros(dim, np.float32)) for r in rows]) if len(rows) \
            else np.zeros((0, dim), np.float32)

    def window_vectors(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        dim = int(self.manifest["dim"])
        owners = self.sentence_rows[rows, 0]
        found = self.query("SELECT id, windows FROM passages WHERE id = ANY(%s)",
                           (self.ids[np.unique(owners)].tolist(),))
        blobs = {r: np.frombuffer(b, dtype="<f4").reshape(-1, dim) for r, (b,) in self.by_row(found).items()}
        out = np.zeros((len(rows), dim), np.float32)
        for j, (r, owner) in enumerate(zip(rows, owners)):
            block = blobs.get(int(owner))
            k = int(r - self.sent_start[owner])
            if block is not None and k < len(block):
                out[j] = block[k]
        return out

    def sample_vectors(self, n: int = 4096) -> np.ndarray:
        if self._sample is None:
            rows = np.sort(np.random.default_rng(0).choice(len(self.ids), min(n, len(self.ids)), replace=False))
            self._sample = self.passage_vectors(rows)
        return self._sample

    def fetch_chunks(self, rows: Sequence[int]) -> dict[int, Chunk]:
        cache = self._snap.chunks if self._snap.conn is not None else {}
        need = [int(r) for r in rows if int(r) not in cache]
        if need:
            found = self.query("SELECT id, record FROM passages WHERE id = ANY(%s)", (self.ids[need].tolist(),))
            cache.update((r, Chunk.from_json(rec)) for r, (rec,) in self.by_row(found).items())
        return {int(r): cache[int(r)] for r in rows if int(r) in cache}

    def present(self, rows: Sequence[int]) -> list[int]:
        found = self.fetch_chunks(rows)
        return [r for r in rows if r in found]

    def full_transcripts(self) -> list[dict]:
        return [t for (t,) in self.query("SELECT transcript FROM episodes WHERE index_id = %s ORDER BY id", (self.ix,))]

    def current_generation(self) -> tuple[int, int]:
        """(episodes, the newest write's number): moves with every write and every removal."""
        return generation(self.query, self.ix)


def generation(query, ix: int) -> tuple[int, int]:
    (count, newest), = query("SELECT count(*), coalesce(max(generation), 0) FROM episodes WHERE index_id = %s", (ix,))
    return int(count), int(newest)


def _array(vec) -> np.ndarray:
    """A pgvector value as float32 (the adapter gives a ``Vector``, or an ndarray in older ones)."""
    return np.asarray(vec.to_numpy() if hasattr(vec, "to_numpy") else vec, dtype=np.float32)


def open_pg_index(config: Config, name: str, *, model: str, settings: ChunkSettings) -> PgIndex:
    """Load what retrieval keeps in memory of index ``name`` (one snapshot)."""
    check_index_name(name)
    db = database(config)
    started = time.monotonic()
    with db.connection() as conn:
        db.check_schema(conn)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            row = conn.execute("SELECT id, model, dim, chunker, created FROM indexes WHERE name = %s",
                               (name,)).fetchone()
            if row is None:
                raise IndexNotFound(f"no index named {name!r} in {db.where}; build it with: "
                                    f"rag index SOURCES... --name {name} (with RAG_DATABASE_URL set)")
            ix, built_model, dim, chunker, created = row
            gen = generation(lambda sql, params: conn.execute(sql, params).fetchall(), ix)
            if built_model != model or chunker != settings.to_json():
                what = (f"it was built with model {built_model!r}, but {model!r} is configured"
                        if built_model != model else "it was built with different chunker settings")
                raise StaleIndex(f"index {name!r} in {db.where} is stale: {what}; rebuild it with: "
                                 f"rag db drop {name}, then rag index SOURCES... --name {name}")
            episodes = conn.execute("SELECT id, episode, show, record, source FROM episodes "
                                    "WHERE index_id = %s ORDER BY id", (ix,)).fetchall()
            code = {eid: n for n, (eid, *_rest) in enumerate(episodes)}
            passages = conn.execute(
                "SELECT id, episode_id, chapter, start_s, end_s, window_sentences, window_speakers "
                "FROM passages WHERE index_id = %s ORDER BY id", (ix,)).fetchall()
            words = conn.execute("SELECT word, vector FROM words WHERE index_id = %s ORDER BY word", (ix,)).fetchall()
            doc_freq = dict(conn.execute("SELECT term, sum(text_df)::int FROM episode_terms WHERE index_id = %s "
                                         "GROUP BY term HAVING sum(text_df) > 0", (ix,)).fetchall())
        finally:
            conn.execute("COMMIT")
    ids = np.array([p[0] for p in passages], dtype=np.int64)
    shows = [e[2] for e in episodes]
    columns, rows = _columns(passages, code, [e[1] for e in episodes], shows)
    sent_start = np.searchsorted(rows[:, 0], np.arange(len(ids) + 1)) if len(rows) else np.zeros(len(ids) + 1, np.int64)
    vocab = tuple(w for w, _ in words)
    vocab_vecs = (np.stack([np.frombuffer(v, dtype="<f2") for _, v in words]).astype(np.float32)
                  if words else np.zeros((0, dim), np.float32))
    manifest = {"format": FORMAT, "name": name, "store": "postgres", "database": db.where,
                "created": created.isoformat(timespec="seconds"), "model": built_model, "dim": dim,
                "chunker": chunker, "episodes": [e[1] for e in episodes], "chunks": len(ids),
                "sentences": len(rows), "vocabulary": len(vocab), "generation": list(gen),
                "sources": [{"path": e[4]} for e in episodes if e[4]],
                "load_s": round(time.monotonic() - started, 3)}
    index = PgIndex(db, name, ix, manifest, ids, columns, rows, sent_start,
                    tuple(e[3] for e in episodes), vocab, vocab_vecs, gen)
    index.chunks = PgChunks(index)
    index.lexical = PgLexical(index, doc_freq)
    return index


def _columns(passages, code, episode_names, show_names) -> tuple[Columns, np.ndarray]:
    """The retrieval columns and the sentence-window rows of ``passages`` (id, episode id, chapter,
    start, end, window sentences, window speakers), in row order."""
    eps = [code[p[1]] for p in passages]
    rows = np.array([(r, si) for r, p in enumerate(passages) for si in p[5]], dtype=np.int32).reshape(-1, 2)
    columns = Columns.of([episode_names[e] for e in eps], [show_names[e] for e in eps], [p[2] for p in passages],
                         [p[3] for p in passages], [p[4] for p in passages], [s for p in passages for s in p[6]])
    return columns, rows
