"""Rerankers: score (question, candidate answer) pairs read together. A protocol, the trained
cross-encoder in ONNX Runtime (no torch), and a deterministic fake for tests.

The trained one (``training/rerank.py``) is the first layers of the podcast-tuned MiniLM that read the
question and a stretch of the reply as one sequence; its weights are ``reranker.safetensors``
beside the retrieval adapter (LoRA deltas, the token-type table and a head, fp16). Its graph is
built from the packaged weights like the query encoder's and cached as one file under
``<index_dir>/.cache/onnx/rerank-<key>.onnx``, checked on load by its key and a probe score. A new
graph deletes those of earlier versions of the same file (see ``prune_rerank_cache``).

``probability`` turns a best score into the calibrated probability that the candidate answers
(a logistic fit on the mined validation searches, stored with the weights): the refusal's main
evidence.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .errors import ModelError

FORMAT = "rag-reranker/1"
_PROBE = ("Probe: does the cached reranker still score as built?", "It does, 0123456789 ,.;:!?")


@runtime_checkable
class Reranker(Protocol):
    name: str

    def score(self, question: str, candidates: Sequence[str]) -> np.ndarray:
        """One score per candidate: higher means it answers the question better."""
        ...

    def probability(self, best: float) -> float | None:
        """P(the best-scored candidate answers), or None when uncalibrated."""
        ...

    @property
    def settings(self) -> dict:
        """Trained settings for the answerer (``depth``, ``weight``, ``policy``); may be empty."""
        ...


class FakeReranker:
    """Deterministic: the share of the question's words (4+ letters) each candidate uses."""

    name = "fake-overlap"

    def score(self, question: str, candidates: Sequence[str]) -> np.ndarray:
        words = set(re.findall(r"[a-z]{4,}", question.lower()))
        return np.array([len(words & set(re.findall(r"[a-z]{4,}", c.lower()))) / max(len(words), 1)
                         for c in candidates], dtype=np.float32)

    def probability(self, best: float) -> float | None:
        return None

    settings: dict = {}


@dataclass(frozen=True)
class CrossWeights:
    """A trained reranker file: what ``onnx_minilm.build_model(cross=...)`` merges and appends."""

    path: Path
    layers: int
    lora: object             # an adapters.Adapter holding the kept layers' deltas
    types: np.ndarray        # [2, hidden] token-type table
    head_weight: np.ndarray  # [hidden]
    head_bias: np.ndarray    # [1]
    scale: float
    max_tokens: int
    meta: dict
    digest: str

    @property
    def calibration(self) -> dict | None:
        return self.meta.get("calibration") or None

    @property
    def settings(self) -> dict:
        """What training chose for the answer that reads it (``training/selector.py``): how many
        of the first stage's stretches it rescores (``depth``), its score's ``weight``, and the
        refusal ``policy`` fitted with its probability; empty for an older file."""
        return {k: self.meta[k] for k in ("depth", "weight", "policy") if k in self.meta}


def load_cross(path: str | Path) -> CrossWeights:
    """Read a reranker file; one that is not a reranker is a ModelError that says what to do."""
    from safetensors import safe_open

    from .adapters import Adapter

    path = Path(path)
    try:
        raw = path.read_bytes()
        with safe_open(str(path), framework="numpy") as f:
            info = json.loads((f.metadata() or {}).get("rag", "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if info.get("format") != FORMAT:
            raise ValueError(f"format {info.get('format')!r}, expected {FORMAT!r}")
        modules = {k[: -len(".lora_A")]: (tensors[k].astype(np.float32),
                                          tensors[k[: -len(".lora_A")] + ".lora_B"].astype(np.float32))
                   for k in tensors if k.endswith(".lora_A")}
        digest = hashlib.sha256(raw).hexdigest()[:12]
        lora = Adapter(path=path, rank=int(info["rank"]), alpha=float(info["alpha"]), modules=modules,
                       meta=info, digest=digest)
        return CrossWeights(path=path, layers=int(info["layers"]), lora=lora,
                            types=tensors["embeddings.token_type_embeddings.weight"].astype(np.float32),
                            head_weight=tensors["head.weight"].astype(np.float32).reshape(-1),
                            head_bias=tensors["head.bias"].astype(np.float32).reshape(1),
                            scale=float(tensors["head.scale"].reshape(-1)[0]),
                            max_tokens=int(info.get("max_tokens", 144)), meta=info, digest=digest)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same advice
        raise ModelError(f"cannot read the reranker {path}: {e}; rebuild it with `rag train` or set "
                         "RAG_RERANK=off") from e


def zscore(x: np.ndarray) -> np.ndarray:
    sd = float(np.std(x))
    return (x - np.mean(x)) / sd if sd > 0 else np.zeros_like(x, dtype=np.float64)


def reorder(first: np.ndarray, cross: np.ndarray, weight: float) -> np.ndarray:
    """Candidates' order (best first, as indexes) by z(first) + ``weight`` x z(cross): how the
    passage reranker combines the hybrid's scores with its own (``Retriever._reranked``)."""
    first, cross = np.asarray(first, dtype=np.float64), np.asarray(cross, dtype=np.float64)
    return np.argsort(-(zscore(first) + weight * zscore(cross)), kind="stable")


def calibrated(calibration: dict | None, best: float) -> float | None:
    if not calibration:
        return None
    z = calibration["weight"] * best + calibration["bias"]
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))


class CrossEncoderReranker:
    """The trained cross-encoder in ONNX Runtime, on one thread a call (as the query encoder)."""

    def __init__(self, model_dir: str | Path, weights: CrossWeights, adapter=None,
                 cache_dir: str | Path | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from . import onnx_minilm

        d = Path(model_dir)
        self.weights = weights
        self.name = f"cross-{weights.layers}l-{weights.digest}"
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(weights.max_tokens, strategy="longest_first")
        self.tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        key = hashlib.sha256(f"{onnx_minilm.cache_key(d, adapter)}\0{weights.digest}".encode()).hexdigest()[:32]

        def session(source):
            return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])

        self.session = None
        path = Path(cache_dir) / f"rerank-{key}.onnx" if cache_dir is not None else None
        record = path.with_name(path.name + ".json") if path is not None else None
        if path is not None and path.exists() and record.exists():
            try:
                probe = json.loads(record.read_text())["probe"]
                self.session = session(str(path))
                if abs(float(self.score(*_PROBE[:1], _PROBE[1:])[0]) - probe) > 1e-4:
                    self.session = None
            except Exception:  # noqa: BLE001 - unreadable or wrong: rebuilt below
                self.session = None
        if self.session is None:
            model, _ = onnx_minilm.build_model(d, key, adapter=adapter, cross=weights)
            self.session = session(model)
            if path is not None:
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    onnx_minilm._write_atomic(path, model)
                    onnx_minilm._write_atomic(record, json.dumps(
                        {"key": key, "probe": float(self.score(*_PROBE[:1], _PROBE[1:])[0]),
                         "reranker": str(Path(weights.path).resolve())}).encode())
                    prune_rerank_cache(path.parent, keep=path, reranker=weights.path)
                except OSError:
                    pass  # a read-only cache: the graph in memory works as well

    def score(self, question: str, candidates: Sequence[str]) -> np.ndarray:
        if not candidates:
            return np.zeros(0, dtype=np.float32)
        enc = self.tokenizer.encode_batch([(question, c) for c in candidates])
        width = max(len(e.ids) for e in enc)
        ids = np.zeros((len(enc), width), dtype=np.int64)
        types = np.zeros_like(ids)
        mask = np.zeros_like(ids)
        for row, e in enumerate(enc):
            ids[row, :len(e.ids)] = e.ids
            types[row, :len(e.ids)] = e.type_ids
            mask[row, :len(e.ids)] = 1
        return self.session.run(["score"], {"input_ids": ids, "attention_mask": mask,
                                            "token_type_ids": types})[0]

    def probability(self, best: float) -> float | None:
        return calibrated(self.weights.calibration, best)

    @property
    def settings(self) -> dict:
        return self.weights.settings


def prune_rerank_cache(cache_dir: Path, *, keep: Path, reranker: str | Path) -> list[Path]:
    """Delete cached reranker graphs (about 90 MB each) that no start will read again: those built
    from an earlier version of this reranker file (it was retrained), from a file that is gone, or
    by a version that recorded no file. Graphs of other reranker files that still exist are kept.
    Returns what was deleted."""
    from . import onnx_minilm

    here = str(Path(reranker).resolve())
    gone: list[Path] = []
    for graph in Path(cache_dir).glob("rerank-*.onnx"):
        if graph.name == Path(keep).name:
            continue
        record = graph.with_name(graph.name + ".json")
        try:
            source = json.loads(record.read_text()).get("reranker")
        except (OSError, ValueError, AttributeError):
            source = None
        if source is not None and source != here and Path(source).exists():
            continue
        gone += onnx_minilm.unlink_all((graph, record))
    return gone


def make_reranker(path: Path | None, embedder, cache_dir: str | Path | None = None) -> Reranker | None:
    """The trained reranker at ``path`` for this embedder, or None: it is trained on top of one
    adapter (the one beside it, or the one whose digest it records), so an embedder without that
    adapter (another model, the plain one, a test's fake) gets none."""
    adapter = getattr(embedder, "adapter", None)
    if path is None or adapter is None:
        return None
    beside = Path(adapter.path).absolute().parent == Path(path).absolute().parent
    weights = load_cross(path)
    if not (beside or weights.meta.get("adapter") == adapter.digest):
        return None
    return CrossEncoderReranker(embedder.path, weights, adapter=adapter, cache_dir=cache_dir)
