"""Issue 9.3: the embedding cache is disposable. A corrupt cache file is moved aside with a
one-line note and a new one started; a cache that cannot be opened or written means no cache,
with a note; the build itself never fails because of it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from rag.embedding import CachedEmbedder, FakeEmbedder

TEXTS = ["a b c", "d e f", "g h i"]


def _cache(path, notes=None) -> CachedEmbedder:
    return CachedEmbedder(FakeEmbedder(), path, note=notes.append if notes is not None else None)


def _good_cache(path) -> None:
    _cache(path).embed([f"text number {i}" for i in range(300)])  # several pages


def _half(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path) -> None:
    path.write_bytes(b"this is not a database\n" * 200)


@pytest.mark.parametrize("spoil", [_garbage, _half], ids=["garbage", "half-truncated"])
def test_a_corrupt_cache_is_moved_aside_and_rebuilt(tmp_path, spoil):
    path = tmp_path / ".cache" / "embeddings.sqlite"
    path.parent.mkdir()
    _good_cache(path)
    spoil(path)
    spoiled = path.read_bytes()
    notes: list[str] = []
    cache = _cache(path, notes)
    vecs = cache.embed([f"text number {i}" for i in range(300)] + TEXTS)
    assert np.array_equal(vecs[-3:], FakeEmbedder().embed(TEXTS))
    assert len(notes) == 1 and "corrupt" in notes[0] and "moved it aside" in notes[0], notes
    aside = [p for p in path.parent.iterdir() if ".corrupt-" in p.name]
    assert len(aside) == 1 and aside[0].read_bytes() == spoiled   # kept, not deleted
    again = _cache(path, notes)
    again.embed(TEXTS)
    assert again.hits == 3 and len(notes) == 1                    # the new cache works


def _read_only_connect(real_connect):
    def connect(path, *args, **kwargs):
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)
    return connect


@pytest.mark.parametrize("how", ["chmod", "read-only sqlite"])
def test_a_read_only_cache_means_no_cache_with_a_note(tmp_path, monkeypatch, how):
    folder = tmp_path / ".cache"
    folder.mkdir()
    path = folder / "embeddings.sqlite"
    if how == "chmod":
        if os.geteuid() == 0:
            pytest.skip("root ignores folder permissions; the read-only sqlite case covers it")
        _good_cache(path)
        folder.chmod(0o555)
    else:
        _good_cache(path)
        monkeypatch.setattr("rag.embedding.sqlite3.connect", _read_only_connect(sqlite3.connect))
    try:
        notes: list[str] = []
        cache = _cache(path, notes)
        vecs = cache.embed(TEXTS)
        assert np.array_equal(vecs, FakeEmbedder().embed(TEXTS))
        assert len(notes) == 1 and "cannot be used" in notes[0] and "building without it" in notes[0]
        cache.embed(["more text"])
        assert len(notes) == 1       # said once; the cache is not tried again
    finally:
        folder.chmod(0o755)


def test_a_cache_folder_that_cannot_exist_means_no_cache(tmp_path):
    (tmp_path / "blocked").write_text("a file where the cache folder should be")
    notes: list[str] = []
    vecs = _cache(tmp_path / "blocked" / "embeddings.sqlite", notes).embed(TEXTS)
    assert vecs.shape == (3, 64) and len(notes) == 1 and "cannot be used" in notes[0]


def test_rag_index_recovers_from_a_garbage_cache(tmp_path):
    """The real CLI: a garbage cache no longer blocks every later build."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "RAG_"))}
    env.update(RAG_INDEX_DIR=str(tmp_path / "indexes"), RAG_EMBED_MODEL="fake")
    (tmp_path / "indexes" / ".cache").mkdir(parents=True)
    _garbage(tmp_path / "indexes" / ".cache" / "embeddings.sqlite")
    run = lambda: subprocess.run([sys.executable, "-m", "rag.cli", "index"], env=env,  # noqa: E731
                                 capture_output=True, text=True, timeout=120)
    first = run()
    assert first.returncode == 0, first.stderr
    assert "note: the embedding cache" in first.stderr and "moved it aside" in first.stderr
    second = run()
    assert second.returncode == 0 and "note:" not in second.stderr, second.stderr
    assert "embeddings reused" in second.stdout and "(0 embeddings reused)" not in second.stdout
    manifest = json.loads(next((tmp_path / "indexes" / "practical-ai-260").glob("v-*/manifest.json"))
                          .read_text())
    assert manifest["embedding_cache"]["notes"] == []


def test_a_build_killed_midway_keeps_what_it_embedded(tmp_path):
    """SIGKILL mid-build: the vectors of every finished batch are already in the cache, so the
    next build embeds only the rest (issue 11.2)."""
    script = tmp_path / "build.py"
    script.write_text(
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from rag.embedding import CachedEmbedder, FakeEmbedder\n"
        "class Dying(FakeEmbedder):\n"
        "    calls = 0\n"
        "    def embed(self, texts, progress=None):\n"
        "        Dying.calls += 1\n"
        "        if Dying.calls == 3:\n"
        "            os.kill(os.getpid(), signal.SIGKILL)\n"
        "        return super().embed(texts, progress)\n"
        "texts = [f'passage number {i}' for i in range(1000)]\n"
        "CachedEmbedder(Dying(), Path(sys.argv[1])).embed(texts)\n")
    path = tmp_path / "embeddings.sqlite"
    proc = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    again = CachedEmbedder(FakeEmbedder(), path)
    vecs = again.embed([f"passage number {i}" for i in range(1000)])
    assert again.hits == 2 * CachedEmbedder.BATCH and again.misses == 1000 - 2 * CachedEmbedder.BATCH
    assert np.allclose(vecs, FakeEmbedder().embed([f"passage number {i}" for i in range(1000)]))
