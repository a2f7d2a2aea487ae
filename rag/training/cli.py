"""``rag train``: mine pairs, train the adapter (resumable), benchmark it, write it with its card.

    rag train                              # the catalog (RAG_CATALOG) -> rag/models/podcast-minilm/
    rag train ~/my-transcripts --out DIR   # a folder of your own Markdown transcripts
    RAG_MODEL_DIR=DIR rag ask "..."        # use what it wrote

Run it again after a stop and it resumes from ``DIR/work/checkpoint.pt``.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..config import SHIPPED_ADAPTER, catalog_path
from ..errors import InputError


def _say(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def run(args) -> int:
    source = Path(args.source).expanduser() if args.source else catalog_path()
    if getattr(args, "selector", False) or getattr(args, "passages", False):
        return run_cross(args, source, "selector" if args.selector else "passages")
    if not source.exists():
        raise InputError(f"no transcripts at {source}; pass a folder of .md transcripts or the "
                         "catalog archive, or set RAG_CATALOG")
    out = Path(args.out).expanduser() if args.out else SHIPPED_ADAPTER.parent
    from .data import HELD_OUT_EPISODES, HELD_OUT_SHOWS, counts_by_show, mine
    from .train import Recipe

    recipe = Recipe()
    for field in ("steps", "rank", "seed", "negatives", "episodes", "per_episode", "lr", "drop_shared"):
        value = getattr(args, field, None)
        if value is not None:
            recipe = replace(recipe, **{field: value})
    if args.rank is not None:
        recipe = replace(recipe, alpha=2.0 * args.rank)

    if args.readers:
        recipe = replace(recipe, episodes=args.episodes or 2, per_episode=args.per_episode or 16,
                         neighbour_negatives=True)
    host_share = getattr(args, "host_share", None)
    if host_share is not None and not (args.readers and 0 <= host_share <= 10):
        raise InputError("--host-share goes with --readers and is a share from 0 to 10 (0.5: half as "
                         "many host pairs as readers' pairs)")
    t0 = time.monotonic()
    _say(f"mining question/answer pairs from {source} (held out: {len(HELD_OUT_EPISODES)} episodes that "
         f"question sets use, and the shows {', '.join(HELD_OUT_SHOWS) or 'none'})")
    skipped: list[str] = []
    splits = mine(source, progress=lambda n: n % 250 == 0 and _say(f"  {n} transcripts read"), skipped=skipped)
    if skipped:
        _say(f"  {len(skipped)} transcripts could not be parsed and were skipped, e.g. {skipped[0]}")
    if len(splits["train"]) < recipe.episodes * recipe.per_episode:
        raise InputError(f"only {len(splits['train'])} training pairs found in {source}; training needs "
                         f"at least {recipe.episodes * recipe.per_episode} (host question -> guest answer)")
    _say(f"{'show':<14} {'train eps':>9} {'pairs':>6} {'val eps':>7} {'pairs':>6}")
    for show, te, tp, ve, vp in counts_by_show(splits):
        _say(f"{show:<14} {te:>9} {tp:>6} {ve:>7} {vp:>6}")
    _say(f"{'total':<14} {len({p.episode for p in splits['train']}):>9} {len(splits['train']):>6} "
         f"{len({p.episode for p in splits['validation']}):>7} {len(splits['validation']):>6}"
         f"   ({time.monotonic() - t0:.0f} s)")
    readers = None
    if args.readers:
        corpus = Path(args.corpus).expanduser() if args.corpus else None
        only = None
        if args.episodes_file:
            listed = Path(args.episodes_file).expanduser()
            if not listed.is_file():
                raise InputError(f"no episode list at {listed}: a text file with one episode id a line")
            only = {line.strip() for line in listed.read_text().splitlines() if line.strip()}
        splits, readers = readers_splits(splits, source, host_share or 0.0, recipe.seed, corpus, only)
        readers = readers + (args.episodes_file,)
        if args.steps is None:  # six passes over the pairs, as the probe that motivated the corpus
            per_step = recipe.episodes * recipe.per_episode
            recipe = replace(recipe, steps=max(50, -(-6 * len(splits["train"]) // per_step)))
    from .rerank import RerankRecipe

    # The reranker is opt-in: measured, it did not earn its place beside the shipped adapter
    # (rag/models/podcast-minilm/EXPERIMENTS.md), so none is trained unless asked for.
    rerank = replace(RerankRecipe(), steps=args.reranker_steps or 0)
    return train_and_report(splits, recipe, out, name=args.name, benchmark=args.benchmark_questions,
                            source=source, rerank=rerank, readers=readers)


def readers_splits(splits, source: Path, host_share: float, seed: int, corpus: Path | None = None,
                   only: set[str] | None = None):
    """The training pairs from the listeners' corpus (its train split), with ``host_share`` times as
    many mined host pairs; the validation items its benchmark reads, with their transcripts."""
    import numpy as np

    from ..evaluation.readers import CORPUS, transcripts
    from .readers import corpus_items, readers_pairs

    corpus = corpus or CORPUS
    if not corpus.is_dir():
        raise InputError(f"no questions at {corpus}: a folder of <episode>.jsonl files "
                         "(eval/readers/README.md), such as `rag questions` writes")
    train = readers_pairs(["train"], source, corpus, only)
    if not train:
        raise InputError("the listeners' corpus (eval/readers/) has no training questions: write some "
                         "(see eval/readers/README.md)")
    host = splits["train"]
    n = min(len(host), int(round(host_share * len(train))))
    picked = np.random.default_rng(seed).choice(len(host), size=n, replace=False) if n else []
    val = corpus_items(["validation"], corpus)
    texts = dict(transcripts(val, source))
    _say(f"listeners' corpus: {len(train)} training pairs from {len({p.episode for p in train})} "
         f"episodes, with {n} host pairs; validation: {len(val)} episodes")
    return {"train": train + [host[i] for i in picked], "validation": splits["validation"]}, (val, texts, corpus)


def train_and_report(splits, recipe, out: Path, *, name: str, benchmark: int | None, source: Path,
                     rerank=None, readers=None) -> int:
    from ..embedding import resolve_model_path
    from . import head as answer_head
    from .bench import evaluate, sample, score, vectors
    from .data import counts_by_show
    from .lora import load_adapter, merge, save_adapter
    from .train import Encoder, Run

    model_dir = resolve_model_path("all-MiniLM-L6-v2")
    work = out / "work"
    adapter_tmp = Run(recipe, work, model_dir).train(splits["train"])

    val = sample(splits["validation"], benchmark)
    _say(f"benchmark: {len(val)} validation questions, each searched among its own episode's answers")
    enc = Encoder(model_dir)
    base = evaluate(enc.encode, val)
    import torch

    adapter = load_adapter(adapter_tmp)
    state = {k: v.cpu().numpy() for k, v in enc.model.state_dict().items()}
    enc.model.load_state_dict({k: torch.from_numpy(v) for k, v in merge(state, adapter).items()})
    qv, pv = vectors(enc.encode, val)
    tuned = score(val, qv, pv)
    listeners = None
    if readers is not None:
        from .readers import dense_benchmark

        items, texts = readers[:2]
        listeners = {"tuned": dense_benchmark(enc.encode, items, texts)}
        enc_base = Encoder(model_dir)
        listeners["base"] = dense_benchmark(enc_base.encode, items, texts)
        del enc_base
        _say(f"listeners' validation ({listeners['tuned']['questions']} questions, dense, 200-word "
             f"windows): hit@5 {listeners['base']['hit@5']:.3f} -> {listeners['tuned']['hit@5']:.3f}")
    head = answer_head.fit(val, qv, pv)
    _say(f"answer head: {head['examples']} examples, accuracy {head['accuracy']:.3f}, ECE {head['ece']:.3f}")
    reranked = None
    if rerank is not None and rerank.steps > 0:
        reranked = train_reranker(splits, rerank, work, out, model_dir, adapter, val, qv, pv)
    figures = {"benchmark": {"base": base, "tuned": tuned}, "recipe": recipe.to_json(),
               "pairs": {k: len(v) for k, v in splits.items()},
               "episodes": {k: len({p.episode for p in v}) for k, v in splits.items()},
               "source": source.name, "answer_head": head,
               **({"reranker": reranked} if reranked else {}),
               **({"listeners": listeners} if listeners else {}),
               **({"episodes_file": readers[3]} if readers is not None and readers[3] else {})}
    save_adapter(out / "adapter.safetensors", adapter.modules, rank=adapter.rank, alpha=adapter.alpha,
                 meta=dict(adapter.meta, name=name, figures=figures, answer_head=head))
    if readers is not None:
        from .answering import fit as fit_answering

        _say("fitting the sentence selector and the refusal on the listeners' questions")
        figures["answering"] = fit_answering(out / "adapter.safetensors", source, work,
                                             corpus=readers[2])["figures"]
        from .sentences import fit_beside

        _say("fitting the sentence head (which sentences answer) on the listeners' questions")
        figures["sentence_head"] = fit_beside(out / "adapter.safetensors", source, work, corpus=readers[2])
        from .prior import fit_beside as fit_prior

        _say("fitting the question prior (which questions are covered) and the refusal's weight on it")
        figures["question_prior"] = fit_prior(out / "adapter.safetensors", source, work, corpus=readers[2])
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    card = readers_card(figures, name=name) if readers is not None else \
        model_card(figures, counts_by_show(splits), name=name)
    (out / "MODEL_CARD.md").write_text(card)
    _say(f"{'':<8} {'hit@1':>6} {'hit@5':>6} {'MRR':>6}")
    for label, r in (("base", base), ("tuned", tuned)):
        _say(f"{label:<8} {r['hit@1']:>6.3f} {r['hit@5']:>6.3f} {r['mrr']:>6.3f}")
    if reranked:
        for label in ("first_stage", "reranker_alone", "blend"):
            r = reranked[label]
            _say(f"{label:<15} {r['hit@1']:>6.3f} {r['hit@5']:>6.3f} {r['mrr']:>6.3f}")
    _say(f"wrote {out / 'adapter.safetensors'} ({(out / 'adapter.safetensors').stat().st_size / 1e6:.1f} MB); "
         f"use it with RAG_MODEL_DIR={out}")
    return 0


def train_reranker(splits, recipe, work: Path, out: Path, model_dir: str, adapter, val, qv, pv) -> dict:
    """Train the cross-encoder on the training pairs (resumable), benchmark it on the validation
    searches (the tuned bi-encoder's top 10 of each question's own episode, reranked), fit the
    probability of its best score, and write ``reranker.safetensors`` beside the adapter."""
    import numpy as np
    import torch

    from .rerank import RerankRun, fit_calibration, rerank_benchmark, ranks_of, save_reranker, summary

    run = RerankRun(recipe, work, model_dir, adapter)
    run.train(splits["train"])
    model = run.model
    model.model.eval()

    def score_pairs(questions, candidates):
        with torch.inference_mode():
            return np.concatenate([model.scores(questions[s:s + 128], candidates[s:s + 128]).numpy()
                                   for s in range(0, len(questions), 128)])

    _say(f"reranker benchmark: {len(val)} validation questions, the tuned model's top 10 reranked")
    bench = rerank_benchmark(score_pairs, val, qv, pv)
    groups = bench["groups"]
    figures = {"recipe": recipe.to_json(), "restated": bench["restated"],
               "first_stage": summary(ranks_of(groups, lambda d, c: d)),
               "reranker_alone": summary(ranks_of(groups, lambda d, c: c)),
               "blend": summary(ranks_of(groups, lambda d, c: d + c / 20.0)),
               "calibration": fit_calibration(groups)}
    save_reranker(out / "reranker.safetensors", model,
                  meta={"recipe": recipe.to_json(), "base": "all-MiniLM-L6-v2", "adapter": adapter.digest,
                        "pairs": len(splits["train"]), "figures": figures,
                        "calibration": figures["calibration"]})
    return figures


ATTRIBUTION = ("Trained on transcripts of Changelog Media podcasts (The Changelog, Go Time, JS Party, "
               "Practical AI, Ship It, Founders Talk, Brain Science, Changelog & Friends and others), "
               "© Changelog Media LLC, licensed under Creative Commons Attribution-ShareAlike 4.0 "
               "(https://creativecommons.org/licenses/by-sa/4.0/). This adapter is a work derived from "
               "them and is shared under CC BY-SA 4.0 as well.")


def model_card(figures: dict, shows, *, name: str) -> str:
    """The card written beside the adapter: data, recipe, figures, attribution."""
    r, b = figures["recipe"], figures["benchmark"]
    rows = "\n".join(f"| {show} | {te} | {tp} | {ve} | {vp} |" for show, te, tp, ve, vp in shows)
    bench = "\n".join(f"| {label} | {v['hit@1']:.3f} | {v['hit@5']:.3f} | {v['mrr']:.3f} |"
                       for label, v in (("all-MiniLM-L6-v2", b["base"]), (f"+ {name} adapter", b["tuned"])))
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in r.items())
    h = figures.get("answer_head") or {"examples": 0, "accuracy": float("nan"), "ece": float("nan")}
    head_n, head_acc, head_ece = h["examples"], h["accuracy"], h["ece"]
    return f"""# {name}: a retrieval adapter for all-MiniLM-L6-v2 on podcast interviews

A LoRA adapter (rank {r['rank']}, alpha {r['alpha']:g}, all 36 linear layers) for the packaged
all-MiniLM-L6-v2, trained so that a listener's question finds the passage where it is answered.
`rag` merges it into the ONNX graph it builds from the packaged weights: no torch at query time.

Reproduce: `rag train` (reads the catalog archive, `RAG_CATALOG`; seeded; resumable). Select it
with `RAG_MODEL_DIR` (default: this folder; `off` for the plain model).

## Data

(question, answer) pairs mined from {figures['source']}: a turn that ends by asking, then another
speaker's reply of at least 25 words (banter, one-word replies, sponsor reads and duplicates
filtered; see `rag/training/data.py`). Episodes used by any question set, and the listeners'
corpus's held-out shows, are never trained on (`HELD_OUT_EPISODES`, `HELD_OUT_SHOWS`). Split by episode, one in ten to
validation: {figures['pairs']['train']} training pairs from {figures['episodes']['train']} episodes,
{figures['pairs']['validation']} validation pairs from {figures['episodes']['validation']} episodes.

| show | train episodes | train pairs | validation episodes | validation pairs |
|---|---|---|---|---|
{rows}

## Recipe

Batches of {r['episodes']} episodes x {r['per_episode']} pairs (the other answers of the same
episode are the negatives), InfoNCE at scale {r['scale']:g}, AdamW at {r['lr']:g} with
{r['warmup']} warm-up steps and linear decay, {r['steps']} steps. A share of
{r['sentence_share']:g} of the passages is the reply's first sentences only (as the index's
sentence windows).

| setting | value |
|---|---|
{recipe}

## Figures: the mined benchmark

{b['tuned']['questions']} validation questions from {b['tuned']['episodes']} episodes, each
searched among the mined answers of its own episode (about
{b['tuned']['candidates_per_episode']:.0f} candidates each, all hard: same speakers, same topic).

| model | hit@1 | hit@5 | MRR |
|---|---|---|---|
{bench}

## The answer head

The refusal's evidence that the best passage answers: a logistic regression on the tuned model's
best similarity and its margin over the second best, fitted on {head_n} validation searches (each
question among its own episode's answers; among another episode's, where its answer is not; and
among its own episode's without its answer, the near miss): accuracy {head_acc:.3f}, expected
calibration error {head_ece:.3f}.

{reranker_section(figures.get("reranker"))}
Recipes compared and the figures on the question sets: `EXPERIMENTS.md` beside this card.

## Licence and attribution

{ATTRIBUTION} The base model, all-MiniLM-L6-v2, is Apache-2.0.
"""


def readers_card(figures: dict, *, name: str) -> str:
    """The card of an adapter trained on listeners' questions (``rag train --readers``)."""
    r, lst = figures["recipe"], figures["listeners"]
    recipe = "\n".join(f"| `{k}` | {v} |" for k, v in r.items())
    bench = "\n".join(f"| {label} | {v['hit@1']:.3f} | {v['hit@5']:.3f} | {v['mrr']:.3f} |"
                      for label, v in (("all-MiniLM-L6-v2", lst["base"]), (f"+ {name} adapter", lst["tuned"])))
    a = figures.get("answering") or {}
    episodes = f" --episodes-file {figures['episodes_file']}" if figures.get("episodes_file") else ""
    fitted = ""
    if a:
        f, sel, ref = a["fusion"], a["selector"], a["refusal"]
        fitted = f"""
## Fitted with it (`answering.json`)

On the listeners' questions, under this adapter (`python -m rag.training.answering`). rag uses
the hybrid's weights; the selector and the refusal are kept in the file as `not_used`: on the test
splits the fitted selector quoted worse than the hand-tuned rule and the fitted refusal refused
many more answerable questions of #260 (`EXPERIMENTS.md`). The refusal rag uses is the file's
`policy`: the one-episode policy with the question prior's weight (below; `python -m rag.training.prior`).

| model | fitted on | figure on the validation split | before | after |
|---|---|---|---|---|
| the hybrid's signal weights | validation | hit@5 ({f['questions']} questions) | {f['before']['hit@5']:.3f} | {f['fitted']['hit@5']:.3f} |
| the sentence selector | train ({a['questions']['train']} questions) | best stretch holds a gold quote | {sel['hand-tuned rule']['all']:.3f} | {sel['fitted']['all']:.3f} |
| the refusal | train; threshold on validation | refusal recall at false refusals {ref['fitted']['false_refusals']:.3f} | {ref['policy before']['refusal_recall']:.3f} | {ref['fitted']['refusal_recall']:.3f} |
"""
    fitted += sentence_head_section(figures.get("sentence_head"))
    fitted += question_prior_section(figures.get("question_prior"))
    return f"""# {name}: a retrieval adapter for all-MiniLM-L6-v2, trained on listeners' questions

A LoRA adapter (rank {r['rank']}, alpha {r['alpha']:g}, all 36 linear layers) for the packaged
all-MiniLM-L6-v2, trained so that a question asked in a listener's own words finds the passage
that answers it. `rag` merges it into the ONNX graph it builds from the packaged weights: no torch
at query time.

Reproduce: `rag train --readers --steps {r['steps']}{episodes}` (reads `eval/readers/` and the
catalog archive, `RAG_CATALOG`; seeded; resumable). Select it with `RAG_MODEL_DIR`.

## Data

The listeners' corpus (`eval/readers/`, its README): questions written by a language model that
read each whole transcript, every quote checked against it. Trained on its train split only:
{figures['pairs']['train']} (question, passage) pairs from {figures['episodes']['train']} episodes,
each question's passage the words around its gold quote, the negatives the batch's other passages
of the same episode and another paragraph of the same episode. No validation, test or held-out-show
episode, and no episode another question set uses, is read (`rag.training.data.held_out`).

## Recipe

| setting | value |
|---|---|
{recipe}

## Figures: the listeners' validation split

{lst['tuned']['questions']} questions, each searched by the model alone among its own episode's
200-word windows (dense retrieval; rag's hybrid adds BM25 and sentence windows):

| model | hit@1 | hit@5 | MRR |
|---|---|---|---|
{bench}
{fitted}
Recipes compared and the figures on every question set: `EXPERIMENTS.md` beside this card.

## Licence and attribution

{ATTRIBUTION} The base model, all-MiniLM-L6-v2, is Apache-2.0.
"""


def sentence_head_section(head: dict | None) -> str:
    """The card's section on ``sentences.safetensors``, when ``rag train --readers`` fitted one."""
    if not head:
        return ""
    v, rec = head["figures"]["validation"], head["recipe"]
    return f"""
## The sentence head (`sentences.safetensors`)

A map of the question's vector, `W = I + U V^T` (rank {rec['rank']}), fitted so that among the
sentence windows of a question's top five passages the ones holding its gold quote score highest
(`python -m rag.training.sentences`; {rec['questions']} train questions from {rec['episodes']}
episodes). rag scores the answer's sentences, and the ranking's sentence signal, through it.

| on the validation split ({v['with']['questions']} questions) | without | with |
|---|---|---|
| the best-scoring window holds the gold quote | {v['without']['top1']:.3f} | {v['with']['top1']:.3f} |
| MRR of the best gold window | {v['without']['mrr']:.3f} | {v['with']['mrr']:.3f} |
"""


def question_prior_section(prior: dict | None) -> str:
    """The card's section on ``prior.safetensors``, when ``rag train --readers`` fitted one."""
    if not prior:
        return ""
    rec, auc, policy = prior["recipe"], prior["auc"], prior["policy"]
    before, after = prior["before"]["validation"], prior["chosen"]["validation"]
    return f"""
## The question prior (`prior.safetensors`)

A logistic regression on the question's vector: how often a question of its kind is covered, before
any passage is read (`python -m rag.training.prior`; {rec['questions']} train questions, {rec['uncovered']}
of them uncovered, from {rec['episodes']} episodes). It tells covered from uncovered questions at an
AUC of {auc['validation']:.3f} on the validation split ({auc['train, cross-validated by episode']:.3f}
on train, cross-validated by episode). Where its log-odds fall below the base rate it was fitted on,
the refusal takes {policy['prior_weight']:g} times the difference off its confidence (never adds it):
the largest weight tried whose false refusals stay within one standard error of the policy's without
it, on the validation split and on #260's dev questions (`answering.json`).

| on the validation split | without | with |
|---|---|---|
| uncovered questions refused | {before['refusal_recall']:.3f} | {after['refusal_recall']:.3f} |
| answerable questions refused | {before['false_refusals']:.3f} | {after['false_refusals']:.3f} |
"""


def reranker_section(r: dict | None) -> str:
    """The card's section on ``reranker.safetensors``, when one was trained."""
    if not r:
        return ""
    rc, cal = r["recipe"], r["calibration"]
    rows = "\n".join(f"| {label} | {r[key]['hit@1']:.3f} | {r[key]['hit@5']:.3f} | {r[key]['mrr']:.3f} |"
                     for label, key in (("the tuned bi-encoder (first stage)", "first_stage"),
                                        ("the reranker alone, over that top 10", "reranker_alone"),
                                        ("both: first stage + reranker / 20", "blend")))
    question = "the question itself, " if rc.get("question_negative", True) else ""
    return f"""## The reranker

`reranker.safetensors`: a cross-encoder made of the first {rc['layers']} layers of the tuned model
(LoRA rank {rc['rank']} on each of their linears, the token-type table and a head), reading a
question and a stretch of the reply as one sequence. Trained on the same training pairs: each
question's candidates are its reply's first sentences (the answer), {question}and
{rc['negatives'] - (1 if question else 0)} other replies of the same episode; softmax cross-entropy
over each group, AdamW at {rc['lr']:g}, {rc['steps']} steps of {rc['questions']} questions.
The score is the scaled cosine of the question's and the candidate's states, each mean-pooled,
plus a linear head on their product.

Benchmark: {r['blend']['questions']} validation questions; the tuned model's top 10 of each
question's own episode, reranked.

| ranking | hit@1 | hit@5 | MRR |
|---|---|---|---|
{rows}

The question itself outscores its answer for {r['restated']:.1%} of them (restating a question is
not answering it). Its probability that the best candidate answers (a logistic fit of the best score on
{cal['examples']} validation searches, each with its answer and without it): accuracy
{cal['accuracy']:.3f}, expected calibration error {cal['ece']:.3f}. The refusal weighs it.
"""


def run_cross(args, source: Path, which: str) -> int:
    """``rag train --selector`` or ``--passages``: the sentence selector (``selector.py``) or the
    passage reranker (``passages.py``) for the adapter in ``--out`` (the shipped one by default),
    trained on the listeners' corpus and written beside it."""
    what = {"selector": "the selector", "passages": "the passage reranker"}[which]
    if args.selector and getattr(args, "passages", False):
        raise InputError("--selector and --passages train one model each; run them one after the other")
    if not source.exists():
        raise InputError(f"no transcripts at {source}; {what} reads the catalog archive the "
                         "listeners' questions are about (pass it, or set RAG_CATALOG)")
    out = Path(args.out).expanduser() if args.out else SHIPPED_ADAPTER.parent
    if not (out / "adapter.safetensors").is_file():
        raise InputError(f"no adapter at {out / 'adapter.safetensors'}: {what} is trained for an "
                         "adapter; train one first (rag train --readers --out DIR)")
    from . import passages, selector

    argv = ["--model-dir", str(out), "--catalog", str(source)]
    for flag, value in (("--steps", args.steps), ("--lr", args.lr), ("--seed", args.seed),
                        ("--rank", args.rank), ("--corpus", args.corpus)):
        if value is not None:
            argv += [flag, str(value)]
    return (selector if which == "selector" else passages).main(argv)


def add_parser(sub) -> None:
    sp = sub.add_parser("train", help="tune the retriever on transcripts (the catalog by default)")
    sp.add_argument("source", nargs="?", default=None,
                    help="the catalog archive (default: RAG_CATALOG) or a folder of .md transcripts")
    sp.add_argument("--out", default=None, help="where the adapter goes (default: the shipped "
                    "rag/models/podcast-minilm/; resumes from OUT/work/checkpoint.pt)")
    sp.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    sp.add_argument("--rank", type=int, default=None, help="LoRA rank (alpha is twice the rank)")
    sp.add_argument("--negatives", choices=["same-episode", "random"], default=None)
    sp.add_argument("--seed", type=int, default=None)
    sp.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    sp.add_argument("--episodes", type=int, default=None, help="episodes per batch (default 4)")
    sp.add_argument("--per-episode", type=int, default=None, help="pairs per episode in a batch (default 8)")
    sp.add_argument("--drop-shared", type=float, default=None,
                    help="share of training questions given without the words they share with their "
                         "passage (default 0: measured in EXPERIMENTS.md)")
    sp.add_argument("--readers", action="store_true",
                    help="train on the listeners' corpus (eval/readers/, its train split) instead of "
                         "the hosts' questions; benchmarked on its validation split")
    sp.add_argument("--corpus", default=None,
                    help="with --readers: the folder of question files (default eval/readers/)")
    sp.add_argument("--episodes-file", default=None,
                    help="with --readers: train only on the train-split episodes listed in this file "
                         "(one id a line; the shipped adapter's list: rag/models/podcast-minilm/train_episodes.txt)")
    sp.add_argument("--host-share", type=float, default=None,
                    help="with --readers: mined host pairs added, as a share of the readers' pairs "
                         "(default 0)")
    sp.add_argument("--name", default="podcast", help="the adapter's name in the model id")
    sp.add_argument("--reranker-steps", type=int, default=None,
                    help="also train a cross-encoder reranker after the adapter, for this many steps "
                    "(default: none; 500 is the recipe measured in EXPERIMENTS.md)")
    sp.add_argument("--selector", action="store_true",
                    help="train the sentence selector (a cross-encoder over the answer's stretches) for "
                         "the adapter in --out on the listeners' corpus, instead of an adapter; --steps, "
                         "--lr, --rank, --seed and --corpus apply (python -m rag.training.selector: more)")
    sp.add_argument("--passages", action="store_true",
                    help="train the passage reranker (a cross-encoder that reorders the hybrid's best "
                         "passages) for the adapter in --out on the listeners' corpus, instead of an "
                         "adapter; --steps, --lr, --rank, --seed and --corpus apply (python -m "
                         "rag.training.passages: more)")
    sp.add_argument("--benchmark-questions", type=int, default=None,
                    help="validation questions to benchmark on (default: all)")
    sp.set_defaults(func=run)
