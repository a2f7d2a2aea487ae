"""A NumPy forward pass for BERT-family sentence-transformers models (all-MiniLM-L6-v2 and kin).

Why: ``import sentence_transformers`` costs ~5 s (torch, transformers, scikit-learn), which would
make every one-shot ``rag ask`` slow. Queries are short; this encoder reads the same safetensors
weights and the same ``tokenizer.json`` and reproduces the model's mean-pooled, normalised vectors
(agreement with sentence-transformers is checked in tests/test_embedding.py) with only numpy,
tokenizers and safetensors imported (~0.2 s).

It supports exactly the architecture it implements — BertModel + mean pooling (+ Normalize) — and
``supports(path)`` says so; anything else goes through sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def supports(model_dir: str | Path) -> bool:
    d = Path(model_dir)
    try:
        config = json.loads((d / "config.json").read_text())
        pooling = json.loads((d / "1_Pooling" / "config.json").read_text())
        modules = json.loads((d / "modules.json").read_text())
    except (OSError, ValueError):
        return False
    kinds = [m.get("type", "") for m in modules]
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and pooling.get("pooling_mode_mean_tokens") is True
        and not any(pooling.get(k) for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens"))
        and (d / "tokenizer.json").exists()
        and (d / "model.safetensors").exists()
        and all(k.endswith(("Transformer", "Pooling", "Normalize")) for k in kinds)
    )


def _erf(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below float32 resolution for GELU's inputs,
    # and vectorised (math.erf per element would dominate the encoder's time).
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


_blas_limited = False


def one_blas_thread() -> None:
    """Run NumPy's BLAS on one thread, for the whole process.

    These matrices are tiny, and on a busy 2-core machine a threaded BLAS spins against other work
    (measured: ~12 ms a query on one thread, ~400 ms on two). The limit is process-wide and set
    once: a scoped limit is not thread-safe (one server thread leaving the scope restores two BLAS
    threads under another thread's matrix product). FAISS and torch keep their own thread pools.
    """
    global _blas_limited
    if _blas_limited:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a declared dependency
        return
    threadpool_limits(limits=1, user_api="blas")
    _blas_limited = True


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class NumpyMiniLM:
    """Encodes texts to unit vectors exactly as the sentence-transformers model would."""

    def __init__(self, model_dir: str | Path, adapter=None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        d = Path(model_dir)
        self.config = json.loads((d / "config.json").read_text())
        st_config = {}
        if (d / "sentence_bert_config.json").exists():
            st_config = json.loads((d / "sentence_bert_config.json").read_text())
        self.max_seq_length = int(st_config.get("max_seq_length", 256))
        modules = json.loads((d / "modules.json").read_text())
        self.normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.no_padding()
        self._counter = None  # see count_tokens
        w = load_file(str(d / "model.safetensors"))
        # Checkpoints differ on whether keys carry a "bert." prefix.
        self.w = {k.removeprefix("bert."): v.astype(np.float32) for k, v in w.items()}
        if adapter is not None:  # a tuned model: LoRA deltas folded in (adapters.py)
            from .adapters import merge

            self.w = merge(self.w, adapter)
        # Store linear weights transposed and contiguous: x @ W.T on a transposed view makes
        # BLAS copy the matrix on every call, which dominated query time.
        for k in [k for k in self.w if k.endswith(".weight") and self.w[k].ndim == 2
                  and "embeddings" not in k]:
            self.w[k] = np.ascontiguousarray(self.w[k].T)
        self.layers = int(self.config["num_hidden_layers"])
        # One product for query, key and value: a wider matrix keeps BLAS busier per call.
        for i in range(self.layers):
            p = f"encoder.layer.{i}.attention.self."
            for part in ("weight", "bias"):
                self.w[p + "qkv." + part] = np.ascontiguousarray(np.concatenate(
                    [self.w.pop(p + name + "." + part) for name in ("query", "key", "value")], axis=-1))
        self.heads = int(self.config["num_attention_heads"])
        self.eps = float(self.config.get("layer_norm_eps", 1e-12))
        self.dim = int(self.config["hidden_size"])

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[name + ".weight"] + self.w[name + ".bias"]

    def _encode_packed(self, seqs: list[list[int]]) -> np.ndarray:
        """Encode several token sequences in one pass, without padding.

        The sequences' rows are stacked so that every linear layer is one matrix product for the
        whole batch (the weights are read once: 4 queries cost ~1.7x one, not 4x); attention and
        pooling run per sequence, so each vector is exactly what encoding it alone would give.
        """
        w = self.w
        bounds = np.cumsum([0] + [len(s) for s in seqs])
        positions = np.concatenate([np.arange(len(s)) for s in seqs])
        x = (w["embeddings.word_embeddings.weight"][np.concatenate(seqs)]
             + w["embeddings.position_embeddings.weight"][positions]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        hd, rows = self.dim // self.heads, x.shape[0]
        scale = 1.0 / np.sqrt(hd)
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q, k, v = (m.reshape(rows, self.heads, hd) for m in
                       np.split(self._linear(x, p + "attention.self.qkv"), 3, axis=1))
            attn = np.empty((rows, self.heads, hd), dtype=np.float32)
            for a, b in zip(bounds[:-1], bounds[1:]):
                qs, ks, vs = (m[a:b].transpose(1, 0, 2) for m in (q, k, v))
                scores = qs @ ks.transpose(0, 2, 1) * scale
                scores = np.exp(scores - scores.max(-1, keepdims=True))
                attn[a:b] = ((scores / scores.sum(-1, keepdims=True)) @ vs).transpose(1, 0, 2)
            x = _layer_norm(self._linear(attn.reshape(rows, self.dim), p + "attention.output.dense") + x,
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self.eps)
            h = self._linear(x, p + "intermediate.dense")
            h = 0.5 * h * (1.0 + _erf(h / np.sqrt(2.0)))
            x = _layer_norm(self._linear(h, p + "output.dense") + x,
                            w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], self.eps)
        out = np.add.reduceat(x, bounds[:-1], axis=0) / np.diff(bounds)[:, None]
        if self.normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        return out.astype(np.float32)

    def encode(self, texts: list[str], max_rows: int = 2048) -> np.ndarray:
        """Unit vectors for ``texts``; packs up to ``max_rows`` word pieces per forward pass."""
        encodings = self.tokenizer.encode_batch(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        one_blas_thread()
        start = 0
        while start < len(encodings):
            end, rows = start, 0
            while end < len(encodings) and (end == start or rows + len(encodings[end].ids) <= max_rows):
                rows += len(encodings[end].ids)
                end += 1
            out[start:end] = self._encode_packed([e.ids for e in encodings[start:end]])
            start = end
        return out

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS]/[SEP], without truncation."""
        # A tokenizer of its own: toggling truncation on the one ``encode`` uses would race with
        # queries being encoded on other server threads.
        if self._counter is None:
            from tokenizers import Tokenizer

            self._counter = Tokenizer.from_str(self.tokenizer.to_str())
            self._counter.no_truncation()
        return len(self._counter.encode(text).ids)
