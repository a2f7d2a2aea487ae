"""Index names are plain names (issue 9.1) and concurrent builds of one index are safe (9.4).

Each hostile name is refused with an InputError before anything is read or written, at every door;
a build's clean-up removes only version folders it wrote itself.
"""

import json
import os
import subprocess
import sys
import threading

import pytest

from rag.api import Assistant, build_index
from rag.config import Config
from rag.embedding import FakeEmbedder
from rag.errors import InputError
from rag.stores.files import check_index_name, load_index, slug

MD = """**Chris Benson:** \\[00:10\\] What are you building at the company?

**Anastasis Germanidis:** We build video generation models for artists. They are very useful.
"""

HOSTILE = ["..", ".", "../escape", ".cache", "a/b", "/tmp/x", "", " ", "a\x00b", "-x/..", "x" * 200,
           "..\\x", "é/", "\n"]


@pytest.fixture
def tree(tmp_path):
    """An index folder holding one good index and a cache, with a sentinel file beside it."""
    idx = tmp_path / "indexes"
    src = tmp_path / "ep.md"
    src.write_text(MD)
    build_index([src], name="good", config=Config(index_dir=idx), embedder=FakeEmbedder())
    (idx / ".cache" / "onnx").mkdir(parents=True, exist_ok=True)
    (idx / ".cache" / "onnx" / "graph.onnx").write_text("keep me")
    (tmp_path / "sentinel").write_text("keep me")
    return tmp_path, idx, src


def _snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_before_anything_is_touched(tree, name):
    root, idx, src = tree
    before = _snapshot(root)
    with pytest.raises(InputError, match="not a valid index name"):
        build_index([src], name=name, config=Config(index_dir=idx), embedder=FakeEmbedder())
    with pytest.raises(InputError, match="not a valid index name"):
        Assistant.load(name, config=Config(index_dir=idx), embedder=FakeEmbedder())
    with pytest.raises(InputError, match="not a valid index name"):
        load_index(idx, name, model="fake-64")
    assert _snapshot(root) == before
    load_index(idx, "good", model="fake-64")  # the other index is untouched


@pytest.mark.parametrize("name", ["my-episode", "practical_ai.260", "A1", "v2.0-final"])
def test_plain_names_are_accepted(name):
    assert check_index_name(name) == name


def test_default_names_from_episode_ids_are_made_plain():
    assert slug("practical ai/260") == "practical-ai-260"
    assert slug("..") == "custom"
    assert check_index_name(slug(".hidden name")) == "hidden-name"


def test_cleanup_removes_only_its_own_versions(tree):
    root, idx, src = tree
    mine = idx / "good" / "notes"
    mine.mkdir()
    (mine / "x.txt").write_text("a user's file")
    target = root / "elsewhere"
    target.mkdir()
    (target / "data").write_text("keep")
    os.symlink(target, idx / "good" / "v-20990101-000000-abcdef12")  # looks like a version
    build_index([src], name="good", config=Config(index_dir=idx), embedder=FakeEmbedder())
    assert (mine / "x.txt").exists() and (target / "data").exists()
    assert (idx / ".cache" / "onnx" / "graph.onnx").exists()
    versions = [p for p in (idx / "good").iterdir() if p.name.startswith("v-") and not p.is_symlink()]
    assert len(versions) == 1


def test_concurrent_builds_of_one_index_all_publish_complete_versions(tree):
    root, idx, src = tree
    errors, paths = [], []

    def build():
        try:
            paths.append(build_index([src], name="same", config=Config(index_dir=idx),
                                     embedder=FakeEmbedder()))
        except Exception as e:  # noqa: BLE001 - the test reports any failure
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(paths) == 4
    loaded = load_index(idx, "same", model="fake-64")
    assert json.loads((loaded.path / "manifest.json").read_text())["chunks"] == len(loaded.chunks)


def test_cli_refuses_a_hostile_name_with_one_line(tree):
    root, idx, src = tree
    before = _snapshot(root)
    env = dict(os.environ, RAG_INDEX_DIR=str(idx))
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "index", str(src), "--name", ".."],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    assert "not a valid index name" in proc.stderr and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "rag.cli", "ask", "hi", "--index", "../escape"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2 and "not a valid index name" in proc.stderr
    assert _snapshot(root) == before
