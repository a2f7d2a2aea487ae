"""rag — ask a podcast interview questions; answers cite where in the conversation they come from.

    import rag
    assistant = rag.Assistant.load()
    print(assistant.ask("How did Runway start?").text)

The public API is exactly ``__all__``; everything else is private. Names load on first use, so
``import rag`` stays cheap (no numpy, faiss or torch until an Assistant or embedder is needed).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    # the library API
    "Assistant", "ChatSession", "build_index", "load_transcript",
    # values
    "Answer", "Citation", "Hit", "Chunk", "Transcript", "Turn", "Paragraph", "Chapter", "Episode",
    "Question", "Evidence", "Signals", "Exchange", "Filters", "Usage",
    "Config",
    # errors
    "RagError", "InputError", "TranscriptError", "IndexError_", "IndexNotFound", "StaleIndex",
    "ModelError", "ChatModelError",
    # test doubles
    "FakeEmbedder", "FakeChatModel",
    "__version__",
]

_WHERE = {
    "Assistant": "api", "ChatSession": "api", "build_index": "api", "load_transcript": "api",
    "Answer": "types", "Citation": "types", "Hit": "types", "Chunk": "types",
    "Transcript": "types", "Turn": "types", "Paragraph": "types", "Chapter": "types",
    "Episode": "types", "Question": "types", "Evidence": "types", "Signals": "types", "Exchange": "types",
    "Filters": "types", "Usage": "types",
    "Config": "config",
    "RagError": "errors", "InputError": "errors", "TranscriptError": "errors",
    "IndexError_": "errors", "IndexNotFound": "errors", "StaleIndex": "errors",
    "ModelError": "errors", "ChatModelError": "errors",
    "FakeEmbedder": "embedding", "FakeChatModel": "chat_models",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rag-interview")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _version()
    elif name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    else:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for type checkers and IDEs; never runs
    from .api import Assistant, ChatSession, build_index, load_transcript
    from .chat_models import FakeChatModel
    from .config import Config
    from .embedding import FakeEmbedder
    from .errors import (ChatModelError, IndexError_, IndexNotFound, InputError, ModelError,
                         RagError, StaleIndex, TranscriptError)
    from .types import (Answer, Chapter, Chunk, Citation, Episode, Evidence, Exchange, Filters, Hit,
                        Paragraph, Question, Signals, Transcript, Turn, Usage)

    __version__: str
