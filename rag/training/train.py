"""``rag train``: tune MiniLM's retrieval on (question, answer) pairs mined from the catalog.

The recipe (defaults measured in rag/models/podcast-minilm/MODEL_CARD.md):
- LoRA (rank 16, alpha 32) on all linears of the packaged all-MiniLM-L6-v2; the base stays frozen.
- Batches of ``episodes`` episodes x ``per_episode`` pairs: the other answers of the same episode are
  the in-batch negatives, which is what this task is about (the right passage among its neighbours).
  Optionally the passage right after each answer is an extra hard negative (off by default: it
  doubles the passage work per step).
- Passages as the index holds them ("Speaker: answer") or, for a share of the pairs, the reply's
  first sentences alone (the sentence windows the index also searches).
- InfoNCE (softmax over the batch's passages, scale 20), AdamW, linear warm-up and decay.

Seeded and resumable: batches are a function of (seed, step), and a checkpoint every
``checkpoint_every`` steps holds the adapter, the optimizer and the step, so a stopped run goes on
where it stopped. Progress with an ETA goes to stderr.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .data import Pair


@dataclass(frozen=True)
class Recipe:
    steps: int = 600
    rank: int = 16
    alpha: float = 32.0
    lr: float = 3e-4
    warmup: int = 20
    episodes: int = 4             # per batch
    per_episode: int = 8          # pairs per episode in a batch
    negatives: str = "same-episode"   # or "random": pairs drawn across the whole set
    neighbour_negatives: bool = False  # the next passage as an extra negative: 2x the passage work
    sentence_share: float = 0.3   # share of passages given as the reply's first sentences only
    drop_shared: float = 0.0      # share of questions whose words shared with the passage are left out
    question_tokens: int = 48
    passage_tokens: int = 128
    scale: float = 20.0
    seed: int = 13
    checkpoint_every: int = 25

    def to_json(self) -> dict:
        return asdict(self)


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def batch_for(pairs: list[Pair], by_episode: dict[str, list[int]], recipe: Recipe, step: int) -> list[Pair]:
    """The pairs of batch ``step``: a pure function of the seed and the step (so resuming is exact)."""
    rng = np.random.default_rng([recipe.seed, step])
    size = recipe.episodes * recipe.per_episode
    if recipe.negatives == "random":
        return [pairs[i] for i in rng.choice(len(pairs), size=size, replace=False)]
    episodes = [e for e, rows in by_episode.items() if len(rows) >= 2]
    weights = np.array([len(by_episode[e]) for e in episodes], dtype=float)
    chosen: list[int] = []
    for e in rng.choice(len(episodes), size=len(episodes), replace=False, p=weights / weights.sum()):
        rows = by_episode[episodes[e]]
        take = min(recipe.per_episode, len(rows), size - len(chosen))
        chosen.extend(rng.choice(rows, size=take, replace=False).tolist())
        if len(chosen) >= size:
            break
    return [pairs[i] for i in chosen]


def without_shared(question: str, passage: str) -> str:
    """The question without the content words it shares with the passage (by stem): a listener's
    paraphrase rarely repeats the speakers' words, a host's question often does. If nothing
    would be left, the question as it is."""
    from ..query import STOPWORDS, stem

    def content(token: str) -> str:  # the token's letters and digits if it is a content word, else ""
        word = re.sub(r"[^a-z0-9]", "", token.lower())
        return "" if word in STOPWORDS else word

    shared = {stem(w) for w in re.findall(r"[a-z0-9]+", passage.lower()) if w not in STOPWORDS}
    kept = [t for t in question.split() if not ((w := content(t)) and stem(w) in shared)]
    return " ".join(kept) if any(content(t) for t in kept) else question


class Encoder:
    """MiniLM (HF transformers) with mean pooling and normalisation, as sentence-transformers does."""

    def __init__(self, model_dir: str, device: str | None = None):
        from ..embedding import _offline

        _offline()  # the packaged weights only; no hub, no "Loading weights" bar
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        # A GPU when there is one (the same recipe, faster); these machines train on the CPU.
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir, dtype=torch.float32).to(self.device)

    def forward(self, texts: list[str], max_tokens: int):
        torch = self.torch
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=max_tokens, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        out = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
        pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: list[str], max_tokens: int = 256, batch: int = 64) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        out = []
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
        with torch.inference_mode():
            for s in range(0, len(order), batch):
                rows = order[s:s + batch]
                out.append((rows, self.forward([texts[i] for i in rows], max_tokens).float().cpu().numpy()))
        vecs = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        for rows, v in out:
            vecs[rows] = v
        return vecs


@dataclass
class Run:
    """One training run in ``out_dir``: checkpoint.pt while it runs, adapter.safetensors at the end."""

    recipe: Recipe
    out_dir: Path
    model_dir: str
    log: list = field(default_factory=list)

    def train(self, pairs: list[Pair]) -> Path:
        import torch

        from .lora import add_lora, export_modules, save_adapter

        torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
        torch.manual_seed(self.recipe.seed)
        r = self.recipe
        enc = Encoder(self.model_dir)
        wrapped = add_lora(enc.model, r.rank, r.alpha)
        enc.model.to(enc.device)
        params = [p for m in wrapped.values() for p in (m.lora_A, m.lora_B)]
        opt = torch.optim.AdamW(params, lr=r.lr, weight_decay=0.0)

        def lr_at(step):
            if step < r.warmup:
                return r.lr * (step + 1) / r.warmup
            return r.lr * max(0.0, (r.steps - step) / max(r.steps - r.warmup, 1))

        self.out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.out_dir / "checkpoint.pt"
        start = 0
        if ckpt.exists():
            state = torch.load(ckpt, weights_only=False, map_location=enc.device)
            # A setting added since the checkpoint was written ran at its default, which keeps the
            # old behaviour.
            saved = {**Recipe().to_json(), **state["recipe"]}
            if saved != r.to_json():
                from ..errors import InputError

                changed = sorted(k for k, v in r.to_json().items() if saved.get(k) != v)
                raise InputError(f"{ckpt} is a run of another recipe (it differs in {', '.join(changed)}); "
                                 "run with the same settings to resume it, or remove it (or use "
                                 "another --out) to start over")
            for name, m in wrapped.items():
                m.lora_A.data.copy_(state["lora"][name][0])
                m.lora_B.data.copy_(state["lora"][name][1])
            opt.load_state_dict(state["optimizer"])
            start, self.log = state["step"], state["log"]
            _log(f"resuming from step {start}")

        by_episode: dict[str, list[int]] = {}
        for i, p in enumerate(pairs):
            by_episode.setdefault(p.episode, []).append(i)
        enc.model.train()
        t0, done_here = time.monotonic(), 0
        for step in range(start, r.steps):
            batch = batch_for(pairs, by_episode, r, step)
            rng = np.random.default_rng([r.seed, step, 1])
            short = rng.random(len(batch)) < r.sentence_share
            passages = [p.target if s else p.passage() for p, s in zip(batch, short)]
            drop = rng.random(len(batch)) < r.drop_shared
            questions = [without_shared(p.question, d) if x else p.question
                         for p, d, x in zip(batch, passages, drop)]
            if r.neighbour_negatives:
                passages += [p.neighbour or p.target for p in batch]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            q = enc.forward(questions, r.question_tokens)
            d = enc.forward(passages, r.passage_tokens)
            logits = q @ d.T * r.scale
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch), device=enc.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            done_here += 1
            loss_value = float(loss.detach())
            self.log.append({"step": step + 1, "loss": round(loss_value, 4)})
            per = (time.monotonic() - t0) / done_here
            eta = per * (r.steps - step - 1)
            _log(f"step {step + 1}/{r.steps}  loss {loss_value:.3f}  {per:.1f} s/step  "
                 f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
            if (step + 1) % r.checkpoint_every == 0 or step + 1 == r.steps:
                tmp = ckpt.with_suffix(".tmp")
                torch.save({"recipe": r.to_json(), "step": step + 1, "log": self.log,
                            "optimizer": opt.state_dict(),
                            "lora": {n: (m.lora_A.data.cpu().clone(), m.lora_B.data.cpu().clone())
                                     for n, m in wrapped.items()}}, tmp)
                os.replace(tmp, ckpt)
        adapter = self.out_dir / "adapter.safetensors"
        save_adapter(adapter, export_modules(wrapped), rank=r.rank, alpha=r.alpha,
                     meta={"recipe": r.to_json(), "base": "all-MiniLM-L6-v2",
                           "pairs": len(pairs), "episodes": len(by_episode)})
        (self.out_dir / "log.json").write_text(json.dumps(self.log))
        return adapter
