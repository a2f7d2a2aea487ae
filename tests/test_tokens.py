"""rag.tokens: tiktoken encodings built offline from bpe-openai's files."""

import socket
import subprocess
import sys
import tempfile

import pytest

from rag import tokens
from rag.errors import ModelError


def test_cl100k_known_tokens():
    enc = tokens.get_encoding("cl100k_base")
    assert enc.encode("hello world") == [15339, 1917]
    assert enc.n_vocab == 100277


def test_o200k_known_tokens():
    assert tokens.get_encoding("o200k_base").encode("hello world") == [24912, 2375]


def test_round_trip_and_cache():
    text = "Anastasis Germanidis: Gen-2 turns text into video — 13:36, naïve café 🎬."
    enc = tokens.get_encoding()
    assert enc.decode(enc.encode(text)) == text
    assert tokens.get_encoding() is enc  # built once per process


def test_works_with_network_disabled_and_writes_nothing_to_tmp(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    empty_tmp = tmp_path / "tmp"
    empty_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(empty_tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(empty_tmp))
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    tokens.get_encoding.cache_clear()
    try:
        assert tokens.count_tokens("hello world") == 2
    finally:
        tokens.get_encoding.cache_clear()
    assert list(empty_tmp.iterdir()) == []


def test_special_tokens_in_text_are_just_text():
    assert tokens.count_tokens("<|endoftext|>") > 1


def test_truncate_to_tokens():
    text = "one two three four five six"
    assert tokens.truncate_to_tokens(text, 3) == "one two three"
    assert tokens.truncate_to_tokens(text, 100) == text
    assert tokens.truncate_to_tokens(text, 0) == ""
    cut = tokens.truncate_to_tokens("🎬🎬🎬", 1)  # a split emoji is dropped, not mangled
    assert "\ufffd" not in cut


def test_unknown_encoding():
    with pytest.raises(ModelError, match="unknown encoding"):
        tokens.get_encoding("p50k_base")


def test_heavy_packages_are_imported_lazily():
    code = ("import sys, rag.tokens, rag.chat_models, rag.prompts, rag.citations, "
            "rag.answer.generative; "
            "print(sorted({'openai', 'tiktoken'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
