"""What query time reads of a trained adapter: the LoRA file, merged into plain weights with NumPy.

An adapter holds, for each adapted linear layer ``W`` ([out, in], HF layout), two small matrices
``A`` ([r, in]) and ``B`` ([out, r]); the tuned layer is ``W + (alpha / r) * B @ A``. The ONNX
graph builder, the NumPy encoder and the rerankers merge it here, so a tuned model at query time
needs no torch and nothing of ``training/``, which writes these files (``training/lora.py``). The
adapter's answer head (three numbers in its metadata, fitted by ``training/head.py``) is read here
too, and the two heads beside it: the sentence head (``SentenceHead``, fitted by
``training/sentences.py``) and the question prior (``QuestionPrior``, fitted by ``training/prior.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# The linears of each BERT layer that get an adapter (HF module names under encoder.layer.N).
TARGETS = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")
FORMAT = "rag-lora/1"


@dataclass(frozen=True)
class Adapter:
    """A loaded adapter: per-module (A, B) matrices, its scale, and what it was trained from."""

    path: Path
    rank: int
    alpha: float
    modules: dict            # module name -> (A [r, in], B [out, r]) float32
    meta: dict               # recipe, base model, figures (from the file's metadata)
    digest: str              # sha256 of the file, first 12 hex digits: names the tuned model

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


def load_adapter(path: str | Path) -> Adapter:
    """Read an adapter file; a file that is not one is a ModelError that says so."""
    from safetensors import safe_open

    from .errors import ModelError

    path = Path(path)
    try:
        raw = path.read_bytes()
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info = json.loads(meta.get("rag", "{}"))
        if info.get("format") != FORMAT:
            raise ValueError(f"format {info.get('format')!r}, expected {FORMAT!r}")
        modules = {}
        for key in tensors:
            if key.endswith(".lora_A"):
                name = key[: -len(".lora_A")]
                modules[name] = (tensors[key].astype(np.float32),
                                 tensors[name + ".lora_B"].astype(np.float32))
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ModelError(f"cannot read the retrieval adapter {path}: {e}; rebuild it with `rag train` "
                         "or unset RAG_MODEL_DIR") from e
    return Adapter(path=path, rank=int(info["rank"]), alpha=float(info["alpha"]), modules=modules,
                   meta=info, digest=hashlib.sha256(raw).hexdigest()[:12])


def merge(weights: dict[str, np.ndarray], adapter: Adapter | None) -> dict[str, np.ndarray]:
    """``weights`` (safetensors names, "bert." prefix already removed) with the adapter folded in."""
    if adapter is None:
        return weights
    out = dict(weights)
    for name, (a, b) in adapter.modules.items():
        key = name + ".weight"
        if key not in out:
            from .errors import ModelError

            raise ModelError(f"the adapter {adapter.path} adapts {name!r}, which this model does not "
                             "have; it was trained for another model")
        out[key] = (out[key].astype(np.float32) + adapter.scale * (b @ a)).astype(np.float32)
    return out


def head_probability(head: dict | None, best: float, second: float) -> float | None:
    """P(the best passage answers) from the best and second-best similarity, by the adapter's
    answer head; None without a head."""
    if not head:
        return None
    (w_best, w_margin), bias = head["weights"], head["bias"]
    z = w_best * best + w_margin * (best - second) + bias
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


SENTENCE_HEAD_FILE = "sentences.safetensors"   # beside an adapter: its sentence head
SENTENCE_HEAD_FORMAT = "rag-sentence-head/1"


@dataclass(frozen=True)
class SentenceHead:
    """Which sentences answer a question, learnt from listeners' questions: the question's vector is
    mapped by ``W = I + U V^T`` (rank ``U.shape[1]``) before it is compared with the sentence
    windows, so a sentence that answers scores above one that only shares the question's topic
    (``training/sentences.py`` fits it; ``Retriever`` scores every sentence window with it: the
    hybrid's sentence signal, and which sentences the answer quotes)."""

    u: np.ndarray            # [dim, rank] float32
    v: np.ndarray            # [dim, rank] float32
    meta: dict

    def __call__(self, q: np.ndarray) -> np.ndarray:
        mapped = q + self.u @ (self.v.T @ q)
        return (mapped / max(float(np.linalg.norm(mapped)), 1e-12)).astype(np.float32)


def sentence_head_for(adapter: Adapter | None) -> SentenceHead | None:
    """The sentence head beside ``adapter`` (``SENTENCE_HEAD_FILE``); None where there is none."""
    if adapter is None or not (adapter.path.parent / SENTENCE_HEAD_FILE).is_file():
        return None
    return load_sentence_head(adapter.path.parent / SENTENCE_HEAD_FILE)


def _beside(path: str | Path, names: tuple[str, ...], fmt: str, what: str, module: str, check):
    """The float32 tensors ``names`` of a file written beside an adapter, and its metadata; a
    ``ModelError`` that says how to rebuild it when it cannot be read, is of another format, or
    ``check(tensors)`` finds their shapes wrong (it returns what is wrong, or None)."""
    from safetensors import safe_open

    from .errors import ModelError

    try:
        with safe_open(str(path), framework="numpy") as f:
            info = json.loads((f.metadata() or {}).get("rag", "{}"))
            tensors = [f.get_tensor(name).astype(np.float32) for name in names]
        if info.get("format") != fmt:
            raise ValueError(f"format {info.get('format')!r}, expected {fmt!r}")
        if (wrong := check(*tensors)) is not None:
            raise ValueError(wrong)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ModelError(f"cannot read the {what} {path}: {e}; rebuild it with "
                         f"`python -m {module}` or remove it") from e
    return tensors, info


def load_sentence_head(path: str | Path) -> SentenceHead:
    (u, v), info = _beside(path, ("u", "v"), SENTENCE_HEAD_FORMAT, "sentence head", "rag.training.sentences",
                           lambda u, v: None if u.shape == v.shape and u.ndim == 2
                           else f"u {u.shape} and v {v.shape} are not two [dim, rank] matrices")
    return SentenceHead(u=u, v=v, meta=info)


QUESTION_PRIOR_FILE = "prior.safetensors"    # beside an adapter: its question prior
QUESTION_PRIOR_FORMAT = "rag-question-prior/1"


@dataclass(frozen=True)
class QuestionPrior:
    """How often a question like this one is covered by the episode it is asked of, before any
    passage is read: a logistic regression on the question's vector, learnt from listeners'
    answerable and uncovered questions (``training/prior.py``). Interviews tell stories and
    opinions; they seldom give a price, a version number or a head count, and the listeners'
    uncovered questions mostly ask for such things. ``distrust`` is one of the refusal's features
    (``RefusalPolicy.prior_weight``): it only ever lowers the refusal's confidence, so no question
    is answered for its kind alone."""

    w: np.ndarray            # [dim] float32
    b: float
    base: float              # the log-odds of the share of covered questions it was fitted on
    meta: dict

    def __call__(self, q: np.ndarray) -> float:
        """The log-odds that a question with vector ``q`` is covered."""
        return float(self.w @ q) + self.b

    def distrust(self, q: np.ndarray) -> float:
        """How far below the base rate its log-odds put the question (0 where they do not)."""
        return max(self.base - self(q), 0.0)


def question_prior_for(adapter: Adapter | None) -> QuestionPrior | None:
    """The question prior beside ``adapter`` (``QUESTION_PRIOR_FILE``); None where there is none."""
    if adapter is None or not (adapter.path.parent / QUESTION_PRIOR_FILE).is_file():
        return None
    return load_question_prior(adapter.path.parent / QUESTION_PRIOR_FILE)


def load_question_prior(path: str | Path) -> QuestionPrior:
    (w, b), info = _beside(path, ("w", "b"), QUESTION_PRIOR_FORMAT, "question prior", "rag.training.prior",
                           lambda w, b: None if w.ndim == 1 and b.shape == (2,)
                           else f"w {w.shape} and b {b.shape} are not a [dim] vector and two numbers")
    return QuestionPrior(w=w, b=float(b[0]), base=float(b[1]), meta=info)
