"""Offline tiktoken: build the OpenAI encodings from the files the ``bpe-openai`` package ships.

``tiktoken.get_encoding("cl100k_base")`` downloads its BPE file on first use (and caches it in
$TMPDIR), so it fails offline. ``bpe-openai`` ships byte-identical copies of those files; we read
them and pass tiktoken's published regex and special tokens ourselves. Nothing touches the
network or writes to disk. tiktoken is imported only when an encoding is first needed.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from functools import lru_cache
import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    import tiktoken

__all__ = ["get_encoding", "count_tokens", "truncate_to_tokens", "encoding_for", "ENCODINGS"]

_ENDOFTEXT = "<|endoftext|>"
_FIM_PREFIX = "<|fim_prefix|>"
_FIM_MIDDLE = "<|fim_middle|>"
_FIM_SUFFIX = "<|fim_suffix|>"
_ENDOFPROMPT = "<|endofprompt|>"

# Copied from tiktoken_ext/openai_public.py (tiktoken 0.14); these define the encodings as much as
# the rank files do. The sha256 is of the uncompressed rank file, as tiktoken itself checks it.
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])

ENCODINGS: dict[str, dict] = {
    "cl100k_base": {
        "pat_str": _CL100K_PAT,
        "special_tokens": {_ENDOFTEXT: 100257, _FIM_PREFIX: 100258, _FIM_MIDDLE: 100259,
                           _FIM_SUFFIX: 100260, _ENDOFPROMPT: 100276},
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    },
    "o200k_base": {
        "pat_str": _O200K_PAT,
        "special_tokens": {_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018},
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    },
}


def _bpe_openai_dir() -> Path:
    # find_spec locates the package without running its __init__, which eagerly loads every
    # tokenizer it ships (slow, and warns on newer Pythons); we only want one data file.
    spec = importlib.util.find_spec("bpe_openai")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("bpe_openai is not installed")
    return Path(list(spec.submodule_search_locations)[0])


def _read_ranks(name: str) -> dict[bytes, int]:
    """Parse ``<base64 token> <rank>`` lines from bpe-openai's gzipped copy of OpenAI's file."""
    try:
        raw = gzip.decompress((_bpe_openai_dir() / "data" / f"{name}.tiktoken.gz").read_bytes())
    except (ModuleNotFoundError, OSError) as err:
        raise ModelError(
            f"cannot read the {name} token file from the bpe-openai package ({err}); "
            "reinstall it with `pip install bpe-openai`"
        ) from err
    if hashlib.sha256(raw).hexdigest() != ENCODINGS[name]["sha256"]:
        raise ModelError(f"the {name} file shipped by bpe-openai does not match OpenAI's (sha256)")
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@lru_cache(maxsize=None)
def get_encoding(name: str = "cl100k_base") -> "tiktoken.Encoding":
    """The named encoding, built once per process without the network."""
    if name not in ENCODINGS:
        raise ModelError(f"unknown encoding {name!r}; choose one of {sorted(ENCODINGS)}")
    import tiktoken  # lazy: `rag search` and `rag transcript` never pay for it

    spec = ENCODINGS[name]
    return tiktoken.Encoding(
        name=name,
        pat_str=spec["pat_str"],
        mergeable_ranks=_read_ranks(name),
        special_tokens=spec["special_tokens"],
    )


def encoding_for(model: str) -> str:
    """The encoding a chat model counts in: o200k_base for OpenAI's GPT-4o, 4.1, 5 and o-series,
    cl100k_base otherwise (GPT-4, GPT-3.5, and the nearest stand-in for a local model's own)."""
    name = model.lower().rsplit("/", 1)[-1]
    return "o200k_base" if name.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")) \
        else "cl100k_base"


def count_tokens(text: str, encoding: str = "cl100k_base") -> int:
    # disallowed_special=() : transcript text that happens to contain "<|endoftext|>" is just text
    return len(get_encoding(encoding).encode(text, disallowed_special=()))


def truncate_to_tokens(text: str, n: int, encoding: str = "cl100k_base") -> str:
    """The longest prefix of ``text`` that fits in ``n`` tokens (whole tokens, valid UTF-8)."""
    enc = get_encoding(encoding)
    tokens = enc.encode(text, disallowed_special=())
    if len(tokens) <= n:
        return text
    # errors="ignore" drops a multi-byte character split at the cut rather than emitting U+FFFD
    return enc.decode_bytes(tokens[: max(n, 0)]).decode("utf-8", errors="ignore")
