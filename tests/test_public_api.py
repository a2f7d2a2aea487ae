"""The public API is pinned: `rag.__all__`, cheap `import rag`, and the README's bot example."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rag

PUBLIC = [
    "Assistant", "ChatSession", "build_index", "load_transcript",
    "Answer", "Citation", "Hit", "Chunk", "Transcript", "Turn", "Paragraph", "Chapter", "Episode",
    "Question", "Evidence", "Signals", "Exchange", "Filters", "Usage",
    "Config",
    "RagError", "InputError", "TranscriptError", "IndexError_", "IndexNotFound", "StaleIndex",
    "ModelError", "ChatModelError",
    "FakeEmbedder", "FakeChatModel",
    "__version__",
]

# The README's "embed it in a bot" example, verbatim.
BOT_EXAMPLE = '''
import rag

assistant = rag.Assistant.load()                 # the shipped episode; builds its index once
sessions: dict[str, rag.ChatSession] = {}        # one conversation per chat user

def reply(user: str, text: str) -> str:
    session = sessions.setdefault(user, assistant.chat())
    try:
        answer = session.ask(text)               # follow-ups are condensed using the history
    except rag.RagError as e:                    # e.g. an empty question: one clear message
        return f"Sorry, {e}"
    cited = "\\n".join(f"{c.label} {c.chapter} · {c.speaker}" for c in answer.citations)
    return f"{answer.text}\\n\\n{cited}".strip()
'''


def test_all_is_pinned():
    assert rag.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_name_resolves(name):
    value = getattr(rag, name)
    assert value is not None
    if name != "__version__":
        assert getattr(value, "__module__", "").startswith("rag.")


def test_errors_share_one_base():
    for name in ("InputError", "TranscriptError", "IndexError_", "IndexNotFound", "StaleIndex",
                 "ModelError", "ChatModelError"):
        assert issubclass(getattr(rag, name), rag.RagError)


def test_version_is_a_string():
    assert isinstance(rag.__version__, str) and rag.__version__[0].isdigit()


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        rag.no_such_thing  # noqa: B018
    assert "Assistant" in dir(rag)


def test_import_rag_is_cheap():
    code = ("import sys, rag; heavy = sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('numpy', 'torch', 'faiss', 'sentence_transformers', 'openai', "
            "'onnxruntime', 'onnx')); "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_star_import_gives_exactly_the_public_names():
    namespace: dict = {}
    exec("from rag import *", namespace)
    assert set(PUBLIC) <= set(namespace)


def test_bot_example_runs(tmp_path, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAG_INDEX_DIR", str(tmp_path))
    monkeypatch.setenv("RAG_EMBED_MODEL", "fake")
    namespace: dict = {}
    exec(compile(BOT_EXAMPLE, "README-example", "exec"), namespace)
    reply = namespace["reply"]
    first = reply("ana", "What makes video generation models useful?")
    assert first and "[" in first
    follow = reply("ana", "And why?")
    assert follow
    session = namespace["sessions"]["ana"]
    assert len(session.history) == 2
    assert session.history[1][0] == "And why?" and "following up on" in session.last.standalone_question
    assert reply("ana", "   ").startswith("Sorry, the question is empty")
    assert reply("bob", "Who hosts the show?")
    assert set(namespace["sessions"]) == {"ana", "bob"}
