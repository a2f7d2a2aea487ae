"""One suite, both stores: what ``stores.open_store`` returns for files and for PostgreSQL writes,
opens, refuses and rebuilds indexes the same way (the PostgreSQL one is real, started by the
tests on 127.0.0.1 as in test_postgres.py)."""

from __future__ import annotations

import pytest

from rag.api import Assistant, build_index, open_index
from rag.config import DEFAULT_INDEX, Config
from rag.embedding import FakeEmbedder
from rag.errors import IndexNotFound, StaleIndex
from rag.stores import FileStore, PgStore, open_store
from test_postgres import SETTINGS, _pg, episode, fresh_database


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    server = _pg()(tmp_path_factory.mktemp("pg")).start()
    yield server
    server.stop()


@pytest.fixture(params=["files", "postgres"])
def config(request, tmp_path):
    if request.param == "files":
        return Config(index_dir=tmp_path / "idx", chunking=SETTINGS)
    from rag.stores.postgres import database

    config = Config(index_dir=tmp_path / "idx", chunking=SETTINGS,
                    database_url=fresh_database(request.getfixturevalue("pg")), db_timeout=2.0)
    database(config).migrate()   # what `rag db migrate` does once for a new database
    return config


def test_configuration_picks_the_store(config):
    assert isinstance(open_store(config), PgStore if config.database_url else FileStore)


def test_write_then_open_gives_the_passages_written(config, tmp_path):
    build_index([episode(tmp_path, 1), episode(tmp_path, 2)], name="cat", config=config, embedder=FakeEmbedder())
    stored = open_store(config).open("cat", model=FakeEmbedder().name)
    assert {t["episode"]["id"] for t in stored.transcripts} == {"show-1", "show-2"}
    assert {c.episode for c in stored.chunks} == {"show-1", "show-2"}
    hits = Assistant.load("cat", config=config, embedder=FakeEmbedder(), backend="extractive").search(
        "a seed round from investors", k=3)
    assert hits and "seed round" in hits[0].chunk.text


def test_a_missing_index_is_refused_with_the_command_that_builds_it(config):
    with pytest.raises(IndexNotFound, match="build it with: rag index"):
        open_index("nope", config=config, embedder=FakeEmbedder())


def test_the_shipped_episode_is_built_when_missing_and_rebuilt_when_stale(config):
    other = FakeEmbedder()
    other.name = "other-model"
    first = open_index(None, config=config, embedder=FakeEmbedder())
    assert first.name == DEFAULT_INDEX and len(first.chunks) > 10
    with pytest.raises(StaleIndex):
        open_store(config).open(DEFAULT_INDEX, model="other-model")
    again = open_index(None, config=config, embedder=other)      # another model: rebuilt, not refused
    assert len(again.chunks) == len(first.chunks)
    assert open_store(config).open(DEFAULT_INDEX, model="other-model") is not None
