"""Generic retrieval pipelines people would build instead of rag, from the same shipped episode.

The transcript's turns are flattened into plain text, one ``Speaker: text`` block per turn, with
chapters ignored. Then:

- ``window200-dense``: fixed 200-word windows, no overlap, embedded with the same model as rag's
  index (vectors cached in the index folder's embedding cache); cosine similarity.
- ``window200-bm25``: the same windows, BM25 only (bm25s, English stopwords, no stemming).
- ``llamaindex1024-dense``: LlamaIndex-style 1,024-token chunks with 200-token overlap (tiktoken
  cl100k_base via rag.tokens), dense retrieval. The embedding model truncates at its own limit
  (256 word pieces for MiniLM), as it would in such a pipeline.

Each passage is a dict: id, start_s, text (with labels, what gets embedded), plain (labels
removed, what gold matching reads) and words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from .metrics import words_of


def flatten(transcripts: Sequence[dict]) -> tuple[list[str], list[float], list[bool], list[str]]:
    """Words of all turns, with each word's time, whether it is a speaker label, and speakers."""
    words, times, labels, speakers = [], [], [], []
    for t in transcripts:
        for turn in t.get("turns", []):
            speaker = turn.get("speaker") or "Unknown"
            speakers.append(speaker)
            paras = turn.get("paragraphs", [])
            start = (paras[0].get("start_s") or 0.0) if paras else 0.0
            for w in f"{speaker}:".split():
                words.append(w), times.append(start), labels.append(True)
            for p in paras:
                for w in p.get("text", "").split():
                    words.append(w), times.append(p.get("start_s") or start), labels.append(False)
    return words, times, labels, speakers


def strip_labels(text: str, speakers: Sequence[str]) -> str:
    for s in sorted(set(speakers), key=len, reverse=True):
        text = re.sub(re.escape(s) + r":", " ", text)
    return text


def word_windows(transcripts: Sequence[dict], size: int = 200, overlap: int = 0) -> list[dict]:
    words, times, labels, _ = flatten(transcripts)
    step = max(1, size - overlap)
    out = []
    for n, start in enumerate(range(0, max(len(words) - overlap, 1), step)):
        span = range(start, min(start + size, len(words)))
        text = " ".join(words[i] for i in span)
        plain = " ".join(words[i] for i in span if not labels[i])
        out.append({"id": f"w{size}-{n}", "start_s": times[span[0]] if span else 0.0,
                    "text": text, "plain": plain, "words": words_of(plain)})
    return out


def token_chunks(transcripts: Sequence[dict], size: int = 1024, overlap: int = 200) -> list[dict]:
    from ..tokens import get_encoding

    words, times, _, speakers = flatten(transcripts)
    enc = get_encoding("cl100k_base")
    tokens = enc.encode(" ".join(words))
    step = max(1, size - overlap)
    out = []
    for n, start in enumerate(range(0, max(len(tokens) - overlap, 1), step)):
        text = enc.decode(tokens[start:start + size])
        first_word = len(enc.decode(tokens[:start]).split())
        plain = strip_labels(text, speakers)
        out.append({"id": f"t{size}-{n}", "start_s": times[min(first_word, len(times) - 1)] if times else 0.0,
                    "text": text, "plain": plain, "words": words_of(plain)})
    return out


@dataclass
class DenseBaseline:
    name: str
    description: str
    passages: list[dict]
    embedder: object
    vectors: object = field(default=None, repr=False)

    def __post_init__(self):
        self.vectors = self.embedder.embed([p["text"] for p in self.passages])

    def search(self, query: str, k: int) -> list[dict]:
        import numpy as np

        q = np.asarray(self.embedder.embed_query(query), dtype=np.float32)
        order = np.argsort(-(self.vectors @ q), kind="stable")[:k]
        return [self.passages[i] for i in order]


@dataclass
class BM25Baseline:
    name: str
    description: str
    passages: list[dict]
    model: object = field(default=None, repr=False)

    def __post_init__(self):
        from ..stores.files import quiet_bm25s

        bm25s = quiet_bm25s()
        self.model = bm25s.BM25()
        self.model.index(bm25s.tokenize([p["text"] for p in self.passages], stopwords="en",
                                        show_progress=False), show_progress=False)

    def search(self, query: str, k: int) -> list[dict]:
        from ..stores.files import quiet_bm25s

        bm25s = quiet_bm25s()
        k = min(k, len(self.passages))
        tokens = bm25s.tokenize([query], stopwords="en", show_progress=False)
        if not tokens.vocab:  # nothing but stopwords
            return self.passages[:k]
        docs, _ = self.model.retrieve(tokens, k=k, show_progress=False)
        return [self.passages[int(i)] for i in docs[0]]


def build_baselines(assistant, embedder=None) -> list:
    """The three baselines over the assistant's own transcripts, with its embedding model."""
    from ..embedding import CachedEmbedder

    transcripts = assistant.index.full_transcripts()
    inner = embedder or assistant.retriever.embedder
    cache = assistant.config.index_dir / ".cache" / "embeddings.sqlite"
    dense = CachedEmbedder(inner, cache)
    windows = word_windows(transcripts, 200, 0)
    return [
        DenseBaseline("window200-dense", "200-word windows, no overlap, dense (same model)",
                      windows, _QueryPassthrough(dense, inner)),
        BM25Baseline("window200-bm25", "200-word windows, no overlap, BM25 (bm25s)", windows),
        DenseBaseline("llamaindex1024-dense", "1,024-token chunks, 200-token overlap (cl100k), dense",
                      token_chunks(transcripts, 1024, 200), _QueryPassthrough(dense, inner)),
    ]


class _QueryPassthrough:
    """Documents through the cache, queries straight to the model."""

    def __init__(self, cached, inner):
        self.cached, self.inner = cached, inner

    def embed(self, texts):
        return self.cached.embed(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)
