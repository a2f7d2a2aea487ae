"""LoRA adapters for MiniLM: trained with torch, stored as a small safetensors file, merged with NumPy.

An adapter holds, for each adapted linear layer ``W`` ([out, in], HF layout), two small matrices
``A`` ([r, in]) and ``B`` ([out, r]); the tuned layer is ``W + (alpha / r) * B @ A``. Stored in fp16:
rank 16 on all 36 linears of MiniLM-L6 is about 1.3 MB.

Reading an adapter and merging it (``load_adapter``, ``merge``) are NumPy only and live in
``rag/adapters.py``, so a tuned model at query time needs no torch and nothing of this package.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# The file format and its reading and merging are query time's (``rag/adapters.py``); training writes it.
from ..adapters import FORMAT, TARGETS, Adapter, load_adapter, merge  # noqa: F401

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
