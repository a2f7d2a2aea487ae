"""The sentence head: which sentences of the retrieved passages answer, learnt from listeners' questions.

The answer quotes the stretch whose sentences are most like the question. The adapter embeds a
question near the passages about its topic, and within a passage every sentence about that topic
scores alike: the one that answers ("they start injecting new money into the game") no higher than
the one that restates the question ("then the banker starts doing some things..."). The head is a
low-rank map of the question's vector, ``W = I + U V^T``, fitted so that, among the sentence
windows of a question's top five passages as rag retrieves them, the windows of the sentences that
hold its gold quote score highest: a softmax over each question's windows at temperature ``TAU``,
L2 on ``U`` and ``V``. The sentence windows in the index are untouched (no rebuild); at query
time it costs one small matrix product a question (``adapters.SentenceHead``).

Fitted on the train split of the listeners' corpus (every answerable question and every
conversation's later turns, each asked as rag asks it, after the turns before it), judged on the
validation split (episodes it never saw). Written beside the adapter as ``sentences.safetensors``,
by ``rag train --readers`` after the adapter, or alone for an adapter already trained::

    python -m rag.training.sentences --model-dir rag/models/podcast-minilm
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..adapters import SENTENCE_HEAD_FILE, SENTENCE_HEAD_FORMAT, SentenceHead
from ..errors import InputError
from ..evaluation import readers as R
from ..evaluation.metrics import holds
from .answering import _first, build_indexes, main_beside, rows_key
from .readers import corpus_items

RANK = 8          # the map's rank: 4, 8 and 16 score validation alike; a full matrix learns the train episodes
L2 = 0.01         # on U and V (0.003 and 0.01 tried at rank 8, 1e-4 to 0.1 on a full matrix: docs/experiments.md)
TAU = 0.05        # softmax temperature over a question's windows (cosine similarities)
STEPS = 1500      # Adam steps of BATCH questions each
BATCH = 256
LR = 0.01


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def collect(adapter: Path | None, split: str, work: Path, corpus: Path = R.CORPUS,
            limit: int | None = None) -> list[dict]:
    """Every answerable question of ``split`` (and every later turn of its conversations, asked
    after the answers before it) searched as rag searches it, in the indexes ``build_indexes``
    wrote under ``work``: the vectors its sentences are scored against, the sentence windows of its
    top five passages, the scoped speaker's bonus, and which windows hold a gold quote."""
    from ..api import Assistant
    from ..config import Config

    items = corpus_items([split], corpus)
    episodes = _first(items, limit)
    config = Config(index_dir=work / "indexes", adapter=adapter, reranker=None)
    rows, t0 = [], time.monotonic()
    for n, episode in enumerate(episodes, 1):
        assistant = Assistant.load(episode, backend="extractive", config=config)
        retriever = assistant.retriever
        # Asked as without a head: a head already beside the adapter (the one being refitted)
        # would choose the passages and the earlier turns' answers the new one learns from.
        retriever.sentence_head = None
        number = {chunk.id: i for i, chunk in enumerate(retriever.chunks)}
        for it in R.as_eval_items(items[episode], longer=True):
            if not it["answerable"]:
                continue
            history = []
            for asked in it.get("history") or ():
                history.append((asked, assistant.ask(asked, history=history).text))
            evidence = assistant.evidence(it["question"], k=5, history=history)
            question, hits = evidence.question, evidence.hits[:5]
            scope = retriever.scope_of(question)
            texts = retriever.answer_texts(question.standalone, scope, question.text if question.follows_up else None)
            windows = retriever.window_rows([number[h.chunk.id] for h in hits])
            if not len(windows):
                continue
            sentences = [retriever.chunks[int(c)].sentences[int(s)].text for c, s in retriever.sent_rows[windows]]
            gold = it["gold_quotes"]
            label = np.array([any(holds(t, g) or (len(t.split()) > 4 and holds(g, t)) for g in gold)
                              for t in sentences])
            if not label.any():
                continue
            rows.append({"id": it["id"], "episode": episode,
                         "queries": np.stack([retriever.query_vector(t) for t in texts]),
                         "windows": retriever.index.window_vectors(windows).astype(np.float16),
                         "bonus": retriever.speaker_bonus(scope, windows), "label": label})
        eta = (time.monotonic() - t0) / n * (len(episodes) - n)
        _say(f"  {split}: {n}/{len(episodes)} episodes, {len(rows)} questions, "
             f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
    return rows


def _packed(rows: list[dict]):
    """The rows as padded tensors: queries [n, 2, dim] with a mask, windows [n, m, dim] with a
    mask, the speaker bonus and the labels [n, m]."""
    import torch

    n, m, dim = len(rows), max(len(r["windows"]) for r in rows), rows[0]["queries"].shape[1]
    q, qm = np.zeros((n, 2, dim), np.float32), np.zeros((n, 2), np.float32)
    w, wm = np.zeros((n, m, dim), np.float32), np.zeros((n, m), bool)
    bonus, label = np.zeros((n, m), np.float32), np.zeros((n, m), bool)
    for i, r in enumerate(rows):
        k, j = len(r["queries"]), len(r["windows"])
        q[i, :k], qm[i, :k] = r["queries"], 1
        w[i, :j], wm[i, :j], bonus[i, :j], label[i, :j] = r["windows"], True, r["bonus"], r["label"]
    return [torch.from_numpy(a) for a in (q, qm, w, wm, bonus, label)]


def _sims(u, v, q, qm, w, bonus):
    """Each window's score: the mean over the question's vectors, each mapped by I + U V^T and
    normalised, of its cosine with the window; plus the speaker bonus."""
    import torch

    mapped = q + (q @ v) @ u.T
    mapped = mapped / mapped.norm(dim=-1, keepdim=True).clamp_min(1e-6)
    s = torch.einsum("bkd,bnd->bkn", mapped, w)
    return (s * qm[..., None]).sum(1) / qm.sum(1, keepdim=True) + bonus


def fit(rows: list[dict], rank: int = RANK, l2: float = L2, tau: float = TAU, steps: int = STEPS,
        batch: int = BATCH, lr: float = LR, seed: int = 0) -> SentenceHead:
    """U and V by Adam on the windows' softmax: minus the log of the gold windows' share."""
    import torch

    torch.manual_seed(seed)
    q, qm, w, wm, bonus, label = _packed(rows)
    dim = q.shape[-1]
    u = torch.zeros(dim, rank, requires_grad=True)
    v = (torch.randn(dim, rank) * 0.01).requires_grad_()
    opt = torch.optim.Adam([u, v], lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(q), (batch,))
        s = (_sims(u, v, q[idx], qm[idx], w[idx], bonus[idx]) / tau).masked_fill(~wm[idx], -1e9)
        loss = (torch.logsumexp(s, 1) - torch.logsumexp(s.masked_fill(~label[idx], -1e9), 1)).mean()
        loss = loss + l2 * ((u ** 2).sum() + (v ** 2).sum())
        opt.zero_grad()
        loss.backward()
        opt.step()
    return SentenceHead(u=u.detach().numpy().copy(), v=v.detach().numpy().copy(), meta={})


def figures(rows: list[dict], head: SentenceHead | None) -> dict:
    """How often a question's best-scoring window is a gold one, and the mean reciprocal rank of
    its best gold window (``head`` None: the question's own vectors, as without a head)."""
    import torch

    q, qm, w, wm, bonus, label = _packed(rows)
    dim = q.shape[-1]
    u, v = ((torch.from_numpy(head.u), torch.from_numpy(head.v)) if head is not None
            else (torch.zeros(dim, 1), torch.zeros(dim, 1)))
    with torch.no_grad():
        s = _sims(u, v, q, qm, w, bonus).masked_fill(~wm, -1e9)
        top1 = label[torch.arange(len(label)), s.argmax(1)].float().mean().item()
        best_gold = s.masked_fill(~label, -1e9).max(1).values
        rank = ((s > best_gold[:, None]) & wm).sum(1).float()
    return {"top1": round(top1, 4), "mrr": round((1 / (rank + 1)).mean().item(), 4), "questions": len(rows)}


def windowsfor(adapter: Path | None, split: str, archive: Path, work: Path, corpus: Path = R.CORPUS,
             limit: int | None = None) -> list[dict]:
    """``collect``'s rows, kept in ``work``: a rerun reads them back while the adapter, the hybrid
    fitted beside it and the split's question files are unchanged (``answering.rows_key``)."""
    import pickle

    path = work / f"sentences-{split}-{limit}-{rows_key(adapter, split, limit, corpus)}.pkl"
    if path.is_file():
        return pickle.loads(path.read_bytes())
    build_indexes(adapter, [split], archive, work, corpus, limit)
    rows = collect(adapter, split, work, corpus, limit)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(rows))
    tmp.replace(path)
    return rows


def write(head: SentenceHead, path: Path) -> None:
    from safetensors.numpy import save_file

    tmp = path.with_suffix(".tmp")
    save_file({"u": head.u.astype(np.float32), "v": head.v.astype(np.float32)}, str(tmp),
              metadata={"rag": json.dumps({"format": SENTENCE_HEAD_FORMAT, **head.meta})})
    tmp.replace(path)


def fit_beside(adapter: Path, archive: Path, work: Path, corpus: Path = R.CORPUS,
               limit: int | None = None) -> dict:
    """Fit the head for ``adapter`` on the listeners' train split, write it beside the adapter
    (``sentences.safetensors``) and return its recipe and its figures on validation and train."""
    train = windowsfor(adapter, "train", archive, work, corpus, limit)
    validation = windowsfor(adapter, "validation", archive, work, corpus, limit)
    if not train or not validation:
        raise InputError(f"no {'train' if not train else 'validation'} question has its gold quote in its top "
                         f"five passages: check the question files ({corpus}) and the transcripts ({archive})")
    _say(f"sentence head: fitting on {len(train)} train questions")
    head = fit(train)
    recipe = {"rank": RANK, "l2": L2, "tau": TAU, "steps": STEPS, "batch": BATCH, "lr": LR, "seed": 0,
              "trained_on": "listeners' corpus, train split (eval/readers/splits.json)",
              "episodes": len({r["episode"] for r in train}), "questions": len(train)}
    result = {"validation": {"without": figures(validation, None), "with": figures(validation, head)},
              "train": {"without": figures(train, None), "with": figures(train, head)}}
    head = SentenceHead(u=head.u, v=head.v, meta={"recipe": recipe, "figures": result,
                                                  "licence": "trained on Changelog transcripts, CC BY-SA 4.0, "
                                                             "copyright Changelog Media"})
    write(head, adapter.parent / SENTENCE_HEAD_FILE)
    return {"recipe": recipe, "figures": result}


def main(argv=None) -> int:
    return main_beside(argv, "fit the sentence head on the listeners' corpus, beside an adapter", fit_beside,
                       lambda result: result["figures"])


if __name__ == "__main__":
    raise SystemExit(main())
