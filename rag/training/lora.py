"""LoRA adapters for MiniLM: trained with torch, stored as a small safetensors file, merged with NumPy.

An adapter holds, for each adapted linear layer ``W`` ([out, in], HF layout), two small matrices
``A`` ([r, in]) and ``B`` ([out, r]); the tuned layer is ``W + (alpha / r) * B @ A``. Stored in fp16:
rank 16 on all 36 linears of MiniLM-L6 is about 1.3 MB.

``merge(weights, adapter)`` is NumPy only: the ONNX graph builder and the NumPy encoder call it, so
a tuned model at query time needs no torch.
"""

from __future__ import annotations

import hashlib
import json
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

    from ..errors import ModelError

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
            from ..errors import ModelError

            raise ModelError(f"the adapter {adapter.path} adapts {name!r}, which this model does not "
                             "have; it was trained for another model")
        out[key] = (out[key].astype(np.float32) + adapter.scale * (b @ a)).astype(np.float32)
    return out


def save_adapter(path: Path, modules: dict[str, tuple[np.ndarray, np.ndarray]], *, rank: int,
                 alpha: float, meta: dict) -> None:
    """Write an adapter atomically, fp16."""
    import os

    from safetensors.numpy import save_file

    tensors = {}
    for name, (a, b) in sorted(modules.items()):
        tensors[name + ".lora_A"] = np.ascontiguousarray(a, dtype=np.float16)
        tensors[name + ".lora_B"] = np.ascontiguousarray(b, dtype=np.float16)
    info = dict(meta, format=FORMAT, rank=rank, alpha=alpha)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp), metadata={"rag": json.dumps(info)})
    os.replace(tmp, path)


# --- torch side (training only) -----------------------------------------------------------------

def add_lora(model, rank: int, alpha: float, dropout: float = 0.0):
    """Wrap the TARGETS linears of a HF BertModel in place; return {module name: wrapper}."""
    import torch
    from torch import nn

    class LoRALinear(nn.Module):
        def __init__(self, base: nn.Linear):
            super().__init__()
            self.base = base
            self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
            nn.init.kaiming_uniform_(self.lora_A, a=5 ** 0.5)
            self.scale = alpha / rank
            self.drop = nn.Dropout(dropout) if dropout else nn.Identity()

        def forward(self, x):
            return self.base(x) + (self.drop(x) @ self.lora_A.T @ self.lora_B.T) * self.scale

    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = {}
    for layer_no, layer in enumerate(model.encoder.layer):
        for target in TARGETS:
            parent = layer
            *path, leaf = target.split(".")
            for part in path:
                parent = getattr(parent, part)
            module = LoRALinear(getattr(parent, leaf))
            setattr(parent, leaf, module)
            wrapped[f"encoder.layer.{layer_no}.{target}"] = module
    return wrapped


def export_modules(wrapped) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {name: (m.lora_A.detach().cpu().numpy(), m.lora_B.detach().cpu().numpy())
            for name, m in wrapped.items()}
