"""The embedding models and the hybrid side by side on every question set, in one run.

    python bench/retrievers.py [--models base,shipped,shipped+DIR,shipped@DIR,DIR...]
                               [--sets dev,test,84,readers-validation,...] [--episodes N]
                               [--questions REGEX] [--out FILE]

Models: ``base`` (the plain packaged all-MiniLM-L6-v2), ``shipped`` (with the adapter in
rag/models/podcast-minilm/) and any folder holding an ``adapter.safetensors`` (what ``rag train
--out`` writes), each optionally followed by ``+PASSAGES``: a ``passages.safetensors`` or its folder,
the reranker that reorders the hybrid's best passages (``python -m rag.training.passages``), and by
``@SELECTOR``: a ``reranker.safetensors`` or its folder, the sentence selector that rescores the
answer's stretches (``python -m rag.training.selector``); ``shipped`` names the file beside the
shipped adapter. Each is named by its folders in the table.

Sets: #260's ``dev`` and ``test`` splits (eval/questions.jsonl), the held-out ``84``
(eval/episodes/practical-ai-84/), and the listeners' corpus (eval/readers/): ``readers-validation``
(tune on it), ``readers-test`` and ``readers-held-out`` (two shows no training saw). A listeners'
set is asked episode by episode, each episode in an index of its own, as a user asks one episode;
``--episodes N`` keeps the first N episodes of each (a quick look; the table says so);
``--questions REGEX`` keeps the questions that match it (case-ignored; a conversation by its second
turn), to measure one kind of question ("who(?:'s| is) the guest").
Transcripts other than #260 come from the catalog (RAG_CATALOG).

Rows: ``dense`` is 200-word windows searched with the model alone (the generic pipeline); ``hybrid``
is rag's retrieval and its extractive answers. Columns: hit@5, hit within 1,200 words, MRR, quote
support and its 95% interval (Wilson: a gap between two rows smaller than the intervals is not
shown by one set), the answers' median length in words (quoting more words quotes the gold more
often: the two are read together), refusal recall, false refusals, answer latency p50. A second table: the
conversations' second turns (hit@5, quote support and words) and, where a set has three-turn
conversations, their third turns asked after the first two answers, the figures of follow-ups, and
the unanswerable questions' refusal recall alone and asked after a first turn (an uncovered
follow-up should be refused as it is alone), and the other answerable questions' hit@5 alone and
asked after that turn (a new question after an unrelated answer should be found as it is alone).
Markdown on stdout, and in ``--out`` when given.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rag.config import SHIPPED_ADAPTER, Config, catalog_path  # noqa: E402

READERS_SETS = {"readers-validation": "validation", "readers-test": "test",
                "readers-held-out": "held_out_shows"}


def question_sets(names, tmp: Path, episodes: int | None, questions: str | None = None):
    """(set name, [(index name or None for #260, transcript path or None, items)]); with
    ``questions``, only the items whose question matches it, and the groups that keep one."""
    for name, groups in _question_sets(names, tmp, episodes):
        if questions:
            wanted = re.compile(questions, re.I)
            groups = [(index, source, kept) for index, source, items in groups
                      if (kept := [it for it in items if wanted.search(it["question"])])]
            if not groups:
                print(f"{name}: no question matches {questions!r}", file=sys.stderr)
                continue
        yield name, groups


def _question_sets(names, tmp: Path, episodes: int | None):
    from rag.evaluation import readers as R
    from rag.evaluation.metrics import load_items

    main = load_items(REPO / "eval" / "questions.jsonl")
    wanted = {"practical-ai-84"} if "84" in names else set()
    plan = R.splits()
    picked = {n: [e for e in plan[READERS_SETS[n]] if (R.CORPUS / f"{e}.jsonl").exists()][:episodes]
              for n in names if n in READERS_SETS}
    for eps in picked.values():
        wanted.update(eps)
    paths = {}
    for episode, text in R.transcripts(wanted, catalog_path()):
        paths[episode] = tmp / f"{episode}.md"
        paths[episode].write_text(text, encoding="utf-8")
    for name in names:
        if name in ("dev", "test"):
            yield name, [(None, None, [it for it in main if it["split"] == name])]
        elif name == "84":
            yield "#84", [("practical-ai-84", paths["practical-ai-84"],
                           load_items(REPO / "eval" / "episodes" / "practical-ai-84" / "questions.jsonl"))]
        elif name in READERS_SETS:
            yield name, [(e, paths[e], R.as_eval_items(R.load(R.CORPUS / f"{e}.jsonl"), longer=True))
                         for e in picked[name]]
        else:
            raise SystemExit(f"unknown set {name!r}: dev, test, 84, {', '.join(READERS_SETS)}")


def trained_file(spec: str, name: str) -> Path:
    """``name`` beside the shipped adapter (``shipped``), in a folder, or the file itself."""
    path = SHIPPED_ADAPTER.parent if spec == "shipped" else Path(spec)
    path = path / name if path.is_dir() else path
    if not path.is_file():
        raise SystemExit(f"no {name} at {path}")
    return path


def model_list(names: str):
    """(label, adapter, passages, reranker) of each ``MODEL[+PASSAGES][@SELECTOR]``: ``base``,
    ``shipped`` or an adapter folder; optionally a ``passages.safetensors`` (or its folder, or
    ``shipped``) that reorders the hybrid's best passages (``rag/training/passages.py``); and
    optionally a ``reranker.safetensors`` (or its folder, or ``shipped``) that rescores the answer's
    stretches (the sentence selector, ``rag/training/selector.py``)."""
    for spec in names.split(","):
        name, _, rerank = spec.partition("@")
        name, _, reorder = name.partition("+")
        if name == "base":
            label, adapter = "MiniLM", None
        elif name == "shipped":
            label, adapter = "MiniLM + shipped adapter", SHIPPED_ADAPTER
        else:
            path = Path(name)
            path = path / "adapter.safetensors" if path.is_dir() else path
            if not path.is_file():
                raise SystemExit(f"no adapter at {path}")
            label, adapter = f"MiniLM + {path.parent.name}", path
        passages = reranker = None
        if reorder:
            passages = trained_file(reorder, "passages.safetensors")
            label += f" + reranker {reorder if reorder == 'shipped' else passages.parent.name}"
        if rerank:
            reranker = trained_file(rerank, "reranker.safetensors")
            label += f" + selector {rerank if rerank == 'shipped' else reranker.parent.name}"
        yield label, adapter, passages, reranker


def after_a_turn(items: list[dict], answerable: bool = False) -> list[dict]:
    """Each unanswerable question (or, with ``answerable``, each answerable one but the first),
    asked after the group's first answerable one: is an uncovered follow-up refused as it is alone,
    and is a new question found as it is alone?"""
    first = next((it for it in items if it["answerable"] and not it.get("history")), None)
    return [] if first is None else [
        {**it, "id": f"{it['id']}-after", "history": [first["question"]], "history_gold_quotes": []}
        for it in items if it["answerable"] is answerable and not it.get("history") and it is not first]


def evaluate_set(groups, config: Config, *, dense: bool, built: set):
    """Every group's items through rag (its own index each), results pooled, and the refusal recall
    of its unanswerable questions asked after a first turn (``after_a_turn``). ``built``: the
    (folder, index) pairs already built in this run (a selector row reuses its adapter's)."""
    from rag.api import Assistant, build_index
    from rag.evaluation import metrics as M, runner
    from rag.evaluation.baselines import build_baselines

    results, after, third, switched = [], [], [], []
    for index, source, items in groups:
        if source is not None and (config.index_dir, index) not in built:
            build_index([source], name=index, config=config)
            built.add((config.index_dir, index))
        assistant = Assistant.load(index, backend="extractive", config=config)
        baselines = [b for b in build_baselines(assistant, assistant.retriever.embedder)
                     if b.name == "window200-dense"] if dense else None
        # Third turns are a row of their own: the set's other figures stay those of its questions
        # and two-turn conversations.
        longer = [it for it in items if it.get("type") == "followup-3"]
        items = [it for it in items if it.get("type") != "followup-3"]
        results += runner.evaluate(assistant, items, k=5, backend="extractive", baselines=baselines)
        after += runner.evaluate(assistant, after_a_turn(items), k=5, backend="extractive")
        switched += runner.evaluate(assistant, after_a_turn(items, answerable=True), k=5, backend="extractive")
        third += runner.evaluate(assistant, longer, k=5, backend="extractive") if longer else []
    uncovered = M.refusal_stats([(False, r["refused"]) for r in after]).get("refusal_recall") if after else None
    aggregate = runner.aggregate(results)
    if third:
        aggregate["by_type"]["followup-3"] = runner.aggregate(third)["overall"]
    if switched:    # the same questions' hit@5 alone and after an unrelated turn
        asked = {r["id"].removesuffix("-after") for r in switched}
        aggregate["new_after_a_turn"] = (
            runner.aggregate([r for r in results if r["id"] in asked])["overall"]["retrieval"]["hit@5"],
            runner.aggregate(switched)["overall"]["retrieval"]["hit@5"])
    return aggregate, uncovered


def _interval(group: dict, key: str) -> str | None:
    """A share's 95% Wilson interval as "low-high" (``rag.evaluation.metrics.interval``)."""
    s = (group.get("intervals") or {}).get(key)
    return f"{s['low']:.3f}-{s['high']:.3f}" if s else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="base,shipped", help="base, shipped, or adapter folders")
    ap.add_argument("--sets", default="dev,test,84,readers-validation,readers-test,readers-held-out")
    ap.add_argument("--episodes", type=int, default=None, help="first N episodes of a listeners' set")
    ap.add_argument("--no-dense", action="store_true", help="skip the dense-only rows")
    ap.add_argument("--questions", default=None, metavar="REGEX", help="only the questions that match (case-ignored)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rows, followups, built = [], [], set()
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        tmp = Path(tmp)
        sets = list(question_sets(args.sets.split(","), tmp, args.episodes, args.questions))
        folders: dict = {}            # one index folder per adapter: the selector does not change the index
        for label, adapter, passages, reranker in model_list(args.models):
            folder = folders.setdefault(str(adapter), tmp / f"idx-{len(folders)}")
            config = Config(index_dir=folder, adapter=adapter, reranker=reranker, passages=passages)
            for set_name, groups in sets:
                t0 = time.monotonic()
                # A row with a trained reranker has its adapter's dense row.
                dense = not args.no_dense and reranker is None and passages is None
                result, uncovered = evaluate_set(groups, config, dense=dense, built=built)
                g = result["overall"]
                ref = g["refusal"]
                n = f"{set_name} ({len(groups)} ep, {g['n']} q)" if groups[0][0] else set_name
                alone, switched = result.get("new_after_a_turn", (None, None))
                for kind, turn in (("followup", ""), ("followup-3", ", third turn")):
                    if kind in result["by_type"]:
                        f = result["by_type"][kind]
                        followups.append((f"{set_name} ({f['n']} conversations{turn})", label,
                                          result.get("followup_turn1", {}).get("hit@5") if not turn else None,
                                          f["retrieval"]["hit@5"], f["quote_support"], _interval(f, "quote_support"),
                                          f.get("answer_words_p50"),
                                          ref.get("refusal_recall"), uncovered, alone, switched,
                                          f["latency_p50_s"] * 1000))
                if dense:
                    r = g["baselines"]["window200-dense"]
                    rows.append((n, f"{label}, dense", r["hit@5"], r["budget@1200"], r["mrr"],
                                 None, None, None, None, None, None))
                r = g["retrieval"]
                rows.append((n, f"{label}, hybrid", r["hit@5"], r["budget@1200"], r["mrr"],
                             g["quote_support"], _interval(g, "quote_support"), g.get("answer_words_p50"),
                             ref.get("refusal_recall"),
                             ref.get("false_refusal_rate"),
                             g["latency_p50_s"] * 1000))
                print(f"{n} {label}: {time.monotonic() - t0:.0f} s", file=sys.stderr)
    head = ("| set | retrieval | hit@5 | hit within 1,200 words | MRR | quote support | its 95% interval "
            "| answer words p50 | refusal R | false refusals | answer p50 ms |\n|---|---|---|---|---|---|---|---|---|---|---|")
    fmt = lambda v: "-" if v is None else v if isinstance(v, str) else f"{v:.3f}" if v <= 1 else f"{v:.1f}"  # noqa: E731
    lines = [head] + ["| " + " | ".join([s, sysname] + [fmt(v) for v in vals]) + " |"
                      for s, sysname, *vals in rows]
    if followups:
        lines += ["", "Follow-ups: the second turn of each conversation, asked after the first one's answer; "
                  "the set's unanswerable questions refused alone and asked after its first answerable one; "
                  "and its other answerable questions, a new question after that turn: hit@5 alone and after it.", "",
                  "| set | retrieval | first turn hit@5 | hit@5 | quote support | its 95% interval "
                  "| answer words p50 | uncovered refused: alone | after a turn | new question hit@5: alone "
                  "| after a turn | answer p50 ms |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join([s, sysname] + [fmt(v) for v in vals]) + " |" for s, sysname, *vals in followups]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
