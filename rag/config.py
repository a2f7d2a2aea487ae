"""Configuration is one small value passed in; ``Config.from_env()`` reads the environment once.

Variables (all optional):
    RAG_INDEX_DIR      where indexes live (default: the project's ``indexes/`` in a source checkout,
                       else ``~/.cache/rag/indexes``)
    RAG_EMBED_MODEL    sentence-transformers model name or path (default: the packaged all-MiniLM-L6-v2)
    RAG_CHAT_MODEL     chat model name for the openai backend (default: gpt-4o-mini)
    OPENAI_API_KEY     enables the openai backend
    OPENAI_BASE_URL    any OpenAI-compatible server (Ollama, vLLM, llama.cpp, ...)
    RAG_CONTEXT_TOKENS how many tokens of passages a chat model reads per answer (500 to 128000,
                       counted with the model's tiktoken encoding; default 6000 for OpenAI's API,
                       3000 for another server, whose window may be 4,096 tokens)
    RAG_CHAT_TIMEOUT   the chat model's deadline for one answer, in seconds: ``FIRST,TOTAL`` (the
                       first token, the whole answer; default ``20,60``) or ``TOTAL`` alone (the
                       first token then within min(20, TOTAL)); past it the extractive answer is
                       served with a note
    RAG_API_KEY        bearer token required by ``rag serve`` when set
    RAG_CORS_ORIGINS   comma-separated origins whose web pages may call ``rag serve`` (default: none)
    RAG_MODEL_DIR      the trained retrieval adapter merged into the embedding model: a folder holding
                       ``adapter.safetensors`` (what ``rag train --out`` writes) or the file itself;
                       ``off`` for the plain model (default: the shipped ``rag/models/podcast-minilm``)
    RAG_RERANK         on/off: the trained rerankers beside the adapter: ``passages.safetensors``
                       reorders the hybrid's best passages, ``reranker.safetensors`` rescores the
                       answer's candidate stretches (default: each on when its file exists)
    RAG_DATABASE_URL   keep indexes in PostgreSQL with pgvector (``postgresql://user@host/db``)
                       instead of folders: every `rag serve` replica shares them (``pip install
                       'rag-interview[postgres]'``)
    RAG_DB_POOL        connections each process keeps to it (default 4)
    RAG_DB_TIMEOUT     seconds to wait for the database or a free connection before a request
                       fails with "unavailable" (default 2)
    RAG_CATALOG        the Changelog transcript archive (.tar.gz) that training, the catalog and the
                       catalog tests read (default: ``../shared/data/changelog-transcripts.tar.gz``
                       beside this checkout)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_INDEX = "practical-ai-260"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


SHIPPED_ADAPTER = Path(__file__).resolve().parent / "models" / "podcast-minilm" / "adapter.safetensors"


def adapter_path(env: dict | None = None, embed_model: str = DEFAULT_MODEL) -> Path | None:
    """The adapter file ``RAG_MODEL_DIR`` selects, or None for the plain model."""
    env = os.environ if env is None else env
    value = (env.get("RAG_MODEL_DIR") or "").strip()
    if value.lower() in ("off", "none", "base", "0"):
        return None
    if not value:  # the shipped adapter is trained for the default model only
        return SHIPPED_ADAPTER if embed_model == DEFAULT_MODEL and SHIPPED_ADAPTER.is_file() else None
    path = Path(value).expanduser()
    path = path / "adapter.safetensors" if path.is_dir() else path
    if not path.is_file():
        from .errors import InputError

        raise InputError(f"RAG_MODEL_DIR={value!r} holds no adapter.safetensors; point it at a "
                         "folder written by `rag train --out`, or set it to off")
    return path


def reranker_path(env: dict | None = None, adapter: Path | None = None) -> Path | None:
    """The reranker beside the adapter, unless ``RAG_RERANK`` is off; None when there is none."""
    env = os.environ if env is None else env
    raw = env.get("RAG_RERANK")
    on = True if raw is None or not raw.strip() else _flag(env, "RAG_RERANK")
    if not on or adapter is None:
        return None
    path = adapter.parent / "reranker.safetensors"
    if path.is_file():
        return path
    if raw is not None and raw.strip():  # asked for by name: say why there is none
        from .errors import InputError

        raise InputError(f"RAG_RERANK is on but {path} does not exist; train one with `rag train` "
                         "or unset RAG_RERANK")
    return None


def passages_path(env: dict | None = None, adapter: Path | None = None) -> Path | None:
    """The passage reranker beside the adapter (``training/passages.py``), unless ``RAG_RERANK`` is
    off; None when there is none."""
    env = os.environ if env is None else env
    raw = env.get("RAG_RERANK")
    on = True if raw is None or not raw.strip() else _flag(env, "RAG_RERANK")
    path = adapter.parent / "passages.safetensors" if adapter is not None else None
    return path if on and path is not None and path.is_file() else None


def catalog_path(env: dict | None = None) -> Path:
    """Where the Changelog transcript archive is: the one place every reader of it asks."""
    env = os.environ if env is None else env
    if env.get("RAG_CATALOG"):
        return Path(env["RAG_CATALOG"]).expanduser()
    return PROJECT_ROOT.parent / "shared" / "data" / "changelog-transcripts.tar.gz"


def default_index_dir() -> Path:
    # A source checkout keeps its indexes next to the code (the project's indexes/ folder);
    # an installed copy has no such folder and uses the user's cache instead.
    if (PROJECT_ROOT / "pyproject.toml").exists() and (PROJECT_ROOT / "indexes").is_dir():
        return PROJECT_ROOT / "indexes"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag" / "indexes"


# The evidence a chat model reads, in tokens (RAG_CONTEXT_TOKENS). Measured with a language model
# in the loop (bench/chat_answers.py, 150 listeners' test questions; the README's table): correct
# answers 0.79 at 5 passages, 0.87 at 3,000 tokens, 0.97 at 6,000, false refusals 0.12 -> 0.07 ->
# 0.02. OpenAI's models read 6,000 easily; a local server (Ollama, llama.cpp) may run a 4,096-token
# window and silently cut a longer prompt, so another server gets 3,000 (0.87, within the targets).
CONTEXT_TOKENS = 6000
CONTEXT_TOKENS_LOCAL = 3000


def _context_tokens(env) -> int:
    base_url = (env.get("OPENAI_BASE_URL") or "").strip()
    default = CONTEXT_TOKENS if not base_url or "api.openai.com" in base_url else CONTEXT_TOKENS_LOCAL
    return int(_number(env, "RAG_CONTEXT_TOKENS", default, lo=500, hi=128_000, whole=True))


@dataclass(frozen=True)
class ChunkSettings:
    max_tokens: int = 240        # word pieces per chunk, under the model's 256 (labels included); dev: 240 beat 200 on hit@5 and budget@1200
    overlap_sentences: int = 1   # sentences repeated when a long turn is split
    question_context_tokens: int = 60  # room kept for the host's question in front of an answer

    def to_json(self) -> dict:
        # How transcripts are read into turns and timed is part of how passages are cut and dated,
        # and the word rules of what BM25 holds: an index built under other ones is rebuilt, like
        # one built with other settings.
        from .parsers.markdown import PARSE_VERSION
        from .query import WORDS_VERSION
        from .timing import TIMING_VERSION
        return {"max_tokens": self.max_tokens, "overlap_sentences": self.overlap_sentences,
                "question_context_tokens": self.question_context_tokens, "timing": TIMING_VERSION,
                "words": WORDS_VERSION, "parse": PARSE_VERSION}


@dataclass(frozen=True)
class Config:
    """Every setting, read from the environment once (``from_env``: what the CLI, the servers and
    ``Assistant.load`` without a config use). ``Config()`` itself reads nothing and loads the plain
    MiniLM; ``Config.from_env({"RAG_INDEX_DIR": ...})`` is what a user gets, the shipped adapter
    included, whatever this process's environment holds."""

    index_dir: Path = field(default_factory=default_index_dir)
    embed_model: str = DEFAULT_MODEL
    chat_model: str = "gpt-4o-mini"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    chunking: ChunkSettings = ChunkSettings()
    query_rewrite: bool = False  # with a chat model: also search for its rewrites of the question
    chat_timeout: tuple[float, float] = (20.0, 60.0)  # (first token, whole answer) in seconds
    context_tokens: int = CONTEXT_TOKENS  # passages a chat model reads per answer, in tokens
    adapter: Path | None = None  # the trained retrieval adapter merged into the embedding model
    reranker: Path | None = None  # the trained cross-encoder beside it (reranking.py), if any
    passages: Path | None = None  # the trained passage reranker beside it (training/passages.py), if any
    database_url: str | None = None  # PostgreSQL keeps the indexes (stores/postgres.py), else files
    db_pool: int = 4
    db_timeout: float = 2.0

    @classmethod
    def from_env(cls, env: dict | None = None) -> "Config":
        env = os.environ if env is None else env
        embed_model = env.get("RAG_EMBED_MODEL") or DEFAULT_MODEL
        return cls(
            index_dir=Path(env["RAG_INDEX_DIR"]) if env.get("RAG_INDEX_DIR") else default_index_dir(),
            embed_model=embed_model,
            adapter=adapter_path(env, embed_model),
            reranker=reranker_path(env, adapter_path(env, embed_model)),
            passages=passages_path(env, adapter_path(env, embed_model)),
            chat_model=env.get("RAG_CHAT_MODEL") or "gpt-4o-mini",
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            query_rewrite=_flag(env, "RAG_QUERY_REWRITE"),
            chat_timeout=_chat_timeout(env),
            context_tokens=_context_tokens(env),
            database_url=_database_url(env),
            db_pool=int(_number(env, "RAG_DB_POOL", 4, lo=1, hi=1000, whole=True)),
            db_timeout=_number(env, "RAG_DB_TIMEOUT", 2.0, lo=0.05, hi=600),
        )

    @property
    def chat_configured(self) -> bool:
        return bool(self.openai_api_key or self.openai_base_url)


def _flag(env, name: str) -> bool:
    """An on/off variable: unset or empty is off; anything unrecognised is an error, not "off"."""
    value = (env.get(name) or "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    from .errors import InputError

    raise InputError(f"{name}={env.get(name)!r} is not on or off; set it to 1 (on) or 0 (off)")


def _chat_timeout(env) -> tuple[float, float]:
    """RAG_CHAT_TIMEOUT: "FIRST,TOTAL" or "TOTAL" seconds; anything else is an error."""
    raw = (env.get("RAG_CHAT_TIMEOUT") or "").strip()
    if not raw:
        return (20.0, 60.0)
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values = [min(20.0, values[0]), values[0]]
    if len(values) != 2 or not all(0 < v < float("inf") for v in values) or values[0] > values[1]:
        from .errors import InputError

        raise InputError(f"RAG_CHAT_TIMEOUT={raw!r} is not a deadline; set seconds as FIRST,TOTAL "
                         "(first token, whole answer; e.g. 20,60) or TOTAL alone")
    return (values[0], values[1])


def _database_url(env) -> str | None:
    url = (env.get("RAG_DATABASE_URL") or "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        from .errors import InputError

        raise InputError(f"RAG_DATABASE_URL must be a postgresql:// URL (e.g. "
                         f"postgresql://rag@db.internal/rag), not {url.split('://')[0]!r}://...")
    return url


def _number(env, name: str, default: float, *, lo: float, hi: float, whole: bool = False) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi or (whole and value != int(value)):
        from .errors import InputError

        kind = "a whole number" if whole else "a number"
        raise InputError(f"{name}={raw!r} is not {kind} from {lo:g} to {hi:g}")
    return value
