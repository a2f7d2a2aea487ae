"""The reranker: a small cross-encoder that reads a question together with a candidate answer.

A bi-encoder embeds the question and the passage apart, so "the reply that answers this" and "a
sentence about the same thing" land close together; that is where the extractive answers went
wrong (the issue's 9 of 26). A cross-encoder reads both at once and can learn the difference, but
it pays a network pass per candidate at query time (``bench/reranker_cost.py``: the full six
layers over 10 windows already cost more than the 60 ms warm budget). So this one is small:

- **Network:** the first ``layers`` layers of the packaged all-MiniLM-L6-v2, with the retrieval
  adapter merged (it starts from weights that already know podcast speech), reading
  ``[CLS] question [SEP] candidate [SEP]`` with token types 0 and 1; mean pooling over every token
  and a linear head give one score. Trained: LoRA on every linear of those layers, the head, and
  the type-1 token embedding. Stored in fp16 beside the adapter (``reranker.safetensors``).
- **Data:** the mined (question, answer) pairs (``data.py``). Each question is a group of
  candidates: its reply's first sentences (the answer); the question itself (restating a question
  is not answering it: a symmetric bi-encoder cannot learn that, a cross-encoder can); and the
  opening sentences of other replies of the same episode: the same people and topic, the near
  misses a reranker is for, hardest first when ``mine_negatives`` ranks them with the tuned
  bi-encoder.
- **Loss:** softmax cross-entropy over each group (listwise), AdamW, warm-up and linear decay.

Seeded and resumable like ``train.Run``: batches are a function of (seed, step), and
``checkpoint.pt`` holds the trainable tensors, the optimizer and the step.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .data import Pair

FORMAT = "rag-reranker/1"


@dataclass(frozen=True)
class RerankRecipe:
    steps: int = 500
    layers: int = 6               # of MiniLM's six: the query-time cost is linear in them
    rank: int = 16
    alpha: float = 32.0
    lr: float = 1e-4
    warmup: int = 20
    questions: int = 8            # per batch
    negatives: int = 7            # per question: the question itself, then same-episode replies
    question_negative: bool = False  # the question itself among its candidates (collapsed: EXPERIMENTS.md)
    question_tokens: int = 32
    candidate_tokens: int = 64
    seed: int = 13
    checkpoint_every: int = 25

    def to_json(self) -> dict:
        return asdict(self)


def _log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def group_for(pairs: list[Pair], i: int, by_episode: dict[str, list[int]], n: int,
              rng: np.random.Generator, hard: dict[int, list[int]] | None = None,
              question: bool = True) -> list[str]:
    """Candidates for question ``i``: its answer first, then the question itself, then up to
    ``n - 1`` other replies of its episode (the ``hard`` ones first, when mined)."""
    p = pairs[i]
    others = [j for j in (hard or {}).get(i, []) if j != i]
    rest = [j for j in by_episode[p.episode] if j != i and j not in others]
    rng.shuffle(rest)
    picked = (others + rest)[: n - 1 if question else n]
    return [p.target] + [p.question] * question + [pairs[j].target for j in picked]


@dataclass(frozen=True)
class Group:
    """One question and what it is scored against: ``positives`` answer it, ``negatives`` (hardest
    first) do not. The listeners' corpus gives these for the sentence selector: the stretches of the
    first stage's own top passages, labelled by whether they hold a gold quote."""

    question: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]


def group_batch(groups: list[Group], recipe: RerankRecipe, step: int) -> list[tuple[str, list[str], int]]:
    """(question, candidates, how many of them answer) of batch ``step``: a pure function of the
    seed and the step; at most two positives and ``recipe.negatives`` negatives, hardest first."""
    rng = np.random.default_rng([recipe.seed, step, 11])
    rows = rng.choice(len(groups), size=min(recipe.questions, len(groups)), replace=False)
    out = []
    for i in rows:
        g = groups[i]
        pos = list(g.positives[:2])
        out.append((g.question, pos + list(g.negatives[: recipe.negatives]), len(pos)))
    return out


def batch_for(pairs, by_episode, recipe: RerankRecipe, step: int, hard=None):
    """(question, candidates) of batch ``step``: a pure function of the seed and the step."""
    rng = np.random.default_rng([recipe.seed, step, 7])
    rows = [i for i in rng.choice(len(pairs), size=recipe.questions, replace=False)
            if len(by_episode[pairs[i].episode]) >= 2]
    return [(pairs[i].question, group_for(pairs, i, by_episode, recipe.negatives, rng, hard,
                                                  recipe.question_negative)) for i in rows]


class CrossEncoder:
    """The first ``layers`` layers of a (tuned) MiniLM with LoRA, mean pooling and a linear head."""

    def __init__(self, model_dir: str, recipe: RerankRecipe, adapter=None):
        from ..embedding import _offline

        _offline()
        import torch
        from transformers import AutoModel, AutoTokenizer

        from .lora import add_lora, merge

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModel.from_pretrained(model_dir)
        if adapter is not None:  # start from the tuned bi-encoder
            state = {k: v.numpy() for k, v in model.state_dict().items()}
            model.load_state_dict({k: torch.from_numpy(v) for k, v in merge(state, adapter).items()})
        model.encoder.layer = model.encoder.layer[: recipe.layers]
        model.config.num_hidden_layers = recipe.layers
        self.model = model
        self.lora = add_lora(model, recipe.rank, recipe.alpha)
        # The token-type table (2 x hidden) is trained whole: type 1 marks the candidate.
        self.types = model.embeddings.token_type_embeddings.weight
        self.types.requires_grad_(True)
        self.head = torch.nn.Linear(model.config.hidden_size, 1)
        self.scale = torch.nn.Parameter(torch.tensor(20.0))
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)
        self.recipe = recipe

    def parameters(self):
        return [p for m in self.lora.values() for p in (m.lora_A, m.lora_B)] + \
            [self.types, self.head.weight, self.head.bias, self.scale]

    def state(self) -> dict:
        return {"lora": {n: (m.lora_A.data.clone(), m.lora_B.data.clone()) for n, m in self.lora.items()},
                "types": self.types.data.clone(), "head": (self.head.weight.data.clone(), self.head.bias.data.clone()),
                "scale": self.scale.data.clone()}

    def load(self, state: dict) -> None:
        for name, m in self.lora.items():
            m.lora_A.data.copy_(state["lora"][name][0])
            m.lora_B.data.copy_(state["lora"][name][1])
        self.types.data.copy_(state["types"])
        self.head.weight.data.copy_(state["head"][0])
        self.head.bias.data.copy_(state["head"][1])
        self.scale.data.copy_(state["scale"])

    def scores(self, questions: list[str], candidates: list[str]):
        """One score per (question, candidate) pair."""
        torch = self.torch
        r = self.recipe
        enc = self.tokenizer(questions, candidates, padding=True, truncation="longest_first",
                             max_length=r.question_tokens + r.candidate_tokens, return_tensors="pt")
        out = self.model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
        second = enc["token_type_ids"].unsqueeze(-1).to(out.dtype) * mask
        first = mask - second
        q = torch.nn.functional.normalize((out * first).sum(1) / first.sum(1).clamp(min=1e-9), dim=-1)
        c = torch.nn.functional.normalize((out * second).sum(1) / second.sum(1).clamp(min=1e-9), dim=-1)
        # The question's and the candidate's words pooled apart, read together: at the start their
        # cosine is what the bi-encoder would say, with the candidate read in the question's light.
        return self.scale * (q * c).sum(-1) + self.head(q * c).squeeze(-1)


@dataclass
class RerankRun:
    """One reranker run in ``out_dir``: checkpoint.pt while it runs, reranker.safetensors at the end."""

    recipe: RerankRecipe
    out_dir: Path
    model_dir: str
    adapter: object = None
    log: list = field(default_factory=list)

    def train(self, pairs: list[Pair] | None = None, hard: dict[int, list[int]] | None = None,
              groups: list[Group] | None = None) -> Path:
        """Train on mined ``pairs`` (each answer against its episode's other replies) or on
        labelled ``groups`` (the selector's stretches: several may answer)."""
        import torch

        torch.set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count())
        torch.manual_seed(self.recipe.seed)
        r = self.recipe
        model = CrossEncoder(self.model_dir, r, self.adapter)
        opt = torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=0.0)

        def lr_at(step):
            if step < r.warmup:
                return r.lr * (step + 1) / r.warmup
            return r.lr * max(0.0, (r.steps - step) / max(r.steps - r.warmup, 1))

        self.out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = self.out_dir / "reranker-checkpoint.pt"
        start = 0
        if ckpt.exists():
            state = torch.load(ckpt, weights_only=False)
            if state["recipe"] != r.to_json():
                from ..errors import InputError

                changed = sorted(k for k, v in r.to_json().items() if state["recipe"].get(k) != v)
                raise InputError(f"{ckpt} is a run of another reranker recipe (it differs in "
                                 f"{', '.join(changed)}); run with the same settings to resume it, or "
                                 "remove it (or use another --out) to start over")
            model.load(state["model"])
            opt.load_state_dict(state["optimizer"])
            start, self.log = state["step"], state["log"]
            _log(f"reranker: resuming from step {start}")
        by_episode: dict[str, list[int]] = {}
        for i, p in enumerate(pairs or ()):
            by_episode.setdefault(p.episode, []).append(i)
        model.model.train()
        t0, done_here = time.monotonic(), 0
        for step in range(start, r.steps):
            if groups is not None:
                labelled = group_batch(groups, r, step)
                batch = [(q, c) for q, c, _ in labelled]
                answering = [n for _, _, n in labelled]
            else:
                batch = batch_for(pairs, by_episode, r, step, hard)
                answering = [1] * len(batch)
            questions = [q for q, cands in batch for _ in cands]
            candidates = [c for _, cands in batch for c in cands]
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            s = model.scores(questions, candidates)
            # Listwise: each question's candidates are one softmax, its answer first.
            sizes = [len(c) for _, c in batch]
            width = max(sizes)
            logits = torch.full((len(batch), width), -1e4)
            at = 0
            for row, n in enumerate(sizes):
                logits[row, :n] = s[at:at + n]
                at += n
            # Each question's answering candidates come first: minus the log of their share.
            positive = torch.full_like(logits, -1e4)
            for row, n in enumerate(answering):
                positive[row, :n] = logits[row, :n]
            loss = (torch.logsumexp(logits, 1) - torch.logsumexp(positive, 1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            done_here += 1
            value = float(loss.detach())
            self.log.append({"step": step + 1, "loss": round(value, 4)})
            per = (time.monotonic() - t0) / done_here
            eta = per * (r.steps - step - 1)
            _log(f"reranker step {step + 1}/{r.steps}  loss {value:.3f}  {per:.1f} s/step  "
                 f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
            if (step + 1) % r.checkpoint_every == 0 or step + 1 == r.steps:
                tmp = ckpt.with_suffix(".tmp")
                torch.save({"recipe": r.to_json(), "step": step + 1, "log": self.log,
                            "optimizer": opt.state_dict(), "model": model.state()}, tmp)
                os.replace(tmp, ckpt)
        self.model = model
        out = self.out_dir / "reranker.safetensors"
        save_reranker(out, model, meta={"recipe": r.to_json(), "base": "all-MiniLM-L6-v2",
                                        "pairs": len(pairs or groups or ()), "episodes": len(by_episode)})
        (self.out_dir / "reranker-log.json").write_text(json.dumps(self.log))
        return out


def save_reranker(path: Path, model: CrossEncoder, meta: dict) -> None:
    """LoRA deltas of the kept layers, the token-type table and the head, fp16, atomically."""
    from safetensors.numpy import save_file

    tensors = {}
    for name, m in sorted(model.lora.items()):
        tensors[name + ".lora_A"] = np.ascontiguousarray(m.lora_A.detach().numpy(), dtype=np.float16)
        tensors[name + ".lora_B"] = np.ascontiguousarray(m.lora_B.detach().numpy(), dtype=np.float16)
    tensors["embeddings.token_type_embeddings.weight"] = np.ascontiguousarray(
        model.types.detach().numpy(), dtype=np.float16)
    tensors["head.weight"] = np.ascontiguousarray(model.head.weight.detach().numpy(), dtype=np.float32)
    tensors["head.bias"] = np.ascontiguousarray(model.head.bias.detach().numpy(), dtype=np.float32)
    tensors["head.scale"] = np.ascontiguousarray(model.scale.detach().numpy().reshape(1), dtype=np.float32)
    r = model.recipe
    info = dict(meta, format=FORMAT, rank=r.rank, alpha=r.alpha, layers=r.layers,
                max_tokens=r.question_tokens + r.candidate_tokens)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(tmp), metadata={"rag": json.dumps(info)})
    os.replace(tmp, path)


def rerank_benchmark(score_pairs, pairs: list[Pair], qv: np.ndarray, pv: np.ndarray, depth: int = 10) -> dict:
    """Each validation question searched among its own episode's answers by the bi-encoder
    (``qv``/``pv``), its top ``depth`` reranked by ``score_pairs(questions, candidates)``: hit@1,
    hit@5 and MRR of the first stage, of the reranker alone over that top, and the scores behind
    them (for the blend and the answer probability)."""
    from collections import defaultdict

    by_ep: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(pairs):
        by_ep[p.episode].append(i)
    first, rows = [], []
    for ep, idx in by_ep.items():
        sims = qv[idx] @ pv[idx].T
        for j, i in enumerate(idx):
            order = np.argsort(-sims[j])
            first.append(1 + int((sims[j] > sims[j, j]).sum()))
            top = [idx[o] for o in order[:depth]]
            rows.append((i, top, sims[j][order[:depth]]))
    qs = [pairs[i].question for i, top, _ in rows for _ in top]
    cs = [pairs[t].target for _, top, _ in rows for t in top]
    flat = np.asarray(score_pairs(qs, cs), dtype=np.float32)
    out, at = [], 0
    for i, top, dense in rows:
        s = flat[at:at + len(top)]
        at += len(top)
        out.append((i, top, dense, s))
    # Restating is not answering: how often the question itself outscores its answer.
    own = np.asarray(score_pairs([pairs[i].question for i, _, _ in rows] * 2,
                                 [pairs[i].question for i, _, _ in rows] + [pairs[i].target for i, _, _ in rows]))
    restated = float((own[:len(rows)] > own[len(rows):]).mean()) if rows else 0.0
    return {"first_ranks": np.array(first), "groups": out, "restated": restated}


def ranks_of(groups, combine) -> np.ndarray:
    """The answer's rank after reranking each group's top by ``combine(dense, cross)``; a question
    whose answer the first stage left out of its top keeps a rank past it."""
    ranks = []
    for i, top, dense, cross in groups:
        if i not in top:
            ranks.append(len(top) + 1)
            continue
        s = combine(dense, cross)
        ranks.append(1 + int((s > s[top.index(i)]).sum()))
    return np.array(ranks)


def summary(ranks: np.ndarray) -> dict:
    return {"questions": int(len(ranks)), "hit@1": float((ranks <= 1).mean()),
            "hit@5": float((ranks <= 5).mean()), "mrr": float((1.0 / ranks).mean())}


def logistic_1d(x: np.ndarray, y: np.ndarray, steps: int = 3000) -> tuple[float, float]:
    """(weight, bias) of P(y=1 | x) = sigmoid(weight * x + bias), by gradient descent on the
    standardised score."""
    mean, std = float(x.mean()), float(x.std()) + 1e-9
    z = (x - mean) / std
    w = b = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z * w + b)))
        w -= 0.5 * float(((p - y) * z).mean())
        b -= 0.5 * float((p - y).mean())
    return w / std, b - w * mean / std


def fit_calibration(groups, steps: int = 3000) -> dict:
    """P(the best-scored candidate answers) from the best reranker score: a logistic fit over the
    validation searches, each twice: its first-stage top with its answer (label 1, when the answer
    made that top) and the same top without it (label 0: the near miss, same people and topic, no
    answer, which is what an on-topic question the interview does not cover looks like)."""
    x, y = [], []
    for i, top, dense, cross in groups:
        if i not in top:
            continue
        x.append(float(cross.max())), y.append(1.0)
        rest = np.delete(cross, top.index(i))
        if len(rest):
            x.append(float(rest.max())), y.append(0.0)
    X, Y = np.array(x), np.array(y)
    weight, bias = logistic_1d(X, Y, steps)
    p = 1 / (1 + np.exp(-(X * weight + bias)))
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == k].mean() - Y[bins == k].mean()) * (bins == k).mean()
              for k in range(10) if (bins == k).any())
    return {"weight": float(weight), "bias": float(bias), "examples": int(len(Y)),
            "accuracy": float(((p >= 0.5) == (Y == 1)).mean()), "ece": float(ece)}
