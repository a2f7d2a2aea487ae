"""Shared fixtures. Data from outside the clone comes through one place: ``rag.config.catalog_path``
(``RAG_CATALOG``, default ``../shared/data/changelog-transcripts.tar.gz``).

Without the archive the tests that read it are skipped with the reason; with ``RAG_REQUIRE_CATALOG=1``
(CI) a missing archive is a failure instead.
"""

import os

import pytest

from rag.config import catalog_path


@pytest.fixture(scope="session")
def catalog():
    path = catalog_path()
    if not path.is_file():
        reason = (f"the transcript catalog is not at {path}; set RAG_CATALOG to the "
                  "changelog-transcripts.tar.gz archive")
        if os.environ.get("RAG_REQUIRE_CATALOG") == "1":
            pytest.fail(f"RAG_REQUIRE_CATALOG=1 but {reason}")
        pytest.skip(reason)
    return path
