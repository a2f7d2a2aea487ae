"""Tables (Markdown pipe tables, aligned so they read on a terminal too), charts and run comparison."""

from __future__ import annotations

import json
from pathlib import Path

from . import metrics as M
from .runner import RETRIEVAL_KEYS

NOT_RUN = "not run"


def fmt(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep] + [line(r) for r in cells])


def retrieval_table(agg: dict, corpus: dict | None = None) -> str:
    o, corpus = agg["overall"], corpus or {}
    systems = [("rag", o["retrieval"])] + list((o.get("baselines") or {}).items())
    rows = [[name, r["n"], corpus.get(name, {}).get("passages"), corpus.get(name, {}).get("mean_words")]
            + [r[k] for k in RETRIEVAL_KEYS] for name, r in systems]
    return table(["system", "n", "passages", "words/passage"] + RETRIEVAL_KEYS, rows)


def _judge_cells(g: dict, judge_status: str | None) -> list:
    j = g.get("judge")
    if not j:
        return [judge_status or NOT_RUN] * 2
    return [j["faithfulness"], j["correctness"]]


def answer_table(agg: dict, judge_status: str | None) -> str:
    o = agg["overall"]
    r = o["refusal"]
    row = [r["refusal_precision"], r["refusal_recall"], r["false_refusal_rate"],
           o["citation_validity"], o["citation_support"], o.get("quote_support"),
           o.get("answer_words_p50"), o["latency_p50_s"], o["latency_p95_s"]]
    return table(["refusal P", "refusal R", "false refusals", "citation validity", "citation support",
                  "quote support", "answer words p50", "latency p50 s", "latency p95 s",
                  "judge faithfulness", "judge correctness"],
                 [row + _judge_cells(o, judge_status)])


INTERVAL_NAMES = {"hit@5": "hit@5", "quote_support": "quote support", "refusal_recall": "refusal R",
                  "false_refusal_rate": "false refusals"}


def interval_table(agg: dict) -> str:
    """The main shares with their number of questions and 95% interval (``metrics.interval``)."""
    got = agg["overall"].get("intervals") or {}
    rows = [[label, s["share"], s["n"], f"{s['low']:.3f}-{s['high']:.3f}"]
            for key, label in INTERVAL_NAMES.items() if (s := got.get(key))]
    return table(["share", "value", "n", "95% interval"], rows)


def type_table(agg: dict, judge_status: str | None) -> str:
    names = list((agg["overall"].get("baselines") or {}))
    headers = ["type", "n", "hit@1", "hit@5", "MRR", "budget@600"] + [f"{n} hit@5" for n in names] + \
              ["refused", "cit. valid", "cit. support", "p50 s", "p95 s", "faithful", "correct"]
    rows = []
    groups = list(agg["by_type"].items())
    for t, g in groups + [("ALL", agg["overall"])]:
        rr = g["retrieval"]
        rows.append([t, g["n"], rr["hit@1"], rr["hit@5"], rr["mrr"], rr["budget@600"]]
                    + [(g.get("baselines") or {}).get(n, {}).get("hit@5") for n in names]
                    + [f'{g["refusal"]["refused"]}/{g["n"]}', g["citation_validity"], g["citation_support"],
                       g["latency_p50_s"], g["latency_p95_s"]] + _judge_cells(g, judge_status))
    if agg.get("followup_turn1"):
        t1 = agg["followup_turn1"]
        rows.append(["followup turn 1", t1["n"], t1["hit@1"], t1["hit@5"], t1["mrr"], t1["budget@600"]]
                    + [None] * (len(headers) - 6))
    return table(headers, rows)


def thresholds_for(results: list[dict], in_use: float) -> list[float]:
    confs = [r["confidence"] for r in results if r.get("confidence") is not None]
    if not confs:
        return [in_use]
    lo, hi = int(min(confs) * 40) / 40, int(max(confs) * 40 + 1) / 40
    grid = [round(lo + i * 0.025, 4) for i in range(int(round((hi - lo) / 0.025)) + 1)]
    return sorted(set(grid + [round(in_use, 4)]))


def tradeoff_table(results: list[dict], in_use: float) -> tuple[str, float | None]:
    rows = [(bool(r["answerable"]), r["confidence"]) for r in results if r.get("confidence") is not None]
    out, last = [], None
    for t in M.threshold_table(rows, thresholds_for(results, in_use)):
        mark = " (in use)" if abs(t["threshold"] - in_use) < 1e-9 else ""
        if t["refused"] == last and not mark:
            continue  # same decisions as the row above: a longer table, nothing new to read
        last = t["refused"]
        out.append([f'{t["threshold"]:.3f}{mark}', t["refused"], t["refusal_precision"],
                    t["refusal_recall"], t["false_refusal_rate"]])
    best = M.calibrate(results)
    return table(["threshold", "refused", "precision", "recall", "false refusals"], out), best


def charts(run: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg, results = run["aggregate"], run["items"]
    types = [t for t, g in agg["by_type"].items() if g["retrieval"]["n"]]
    systems = [("rag", lambda g: g["retrieval"]["hit@5"])]
    for n in (agg["overall"].get("baselines") or {}):
        systems.append((n, lambda g, n=n: (g.get("baselines") or {}).get(n, {}).get("hit@5")))
    fig, ax = plt.subplots(figsize=(max(7, 1.1 * len(types)), 4))
    width = 0.8 / len(systems)
    for i, (name, get) in enumerate(systems):
        vals = [get(agg["by_type"][t]) or 0.0 for t in types]
        ax.bar([x + i * width for x in range(len(types))], vals, width, label=name)
    ax.set_xticks([x + width * (len(systems) - 1) / 2 for x in range(len(types))], types, rotation=30)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("hit@5")
    ax.set_title(f"hit@5 by question type ({run['config']['split']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "hit_by_type.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist([r["latency_s"] * 1000 for r in results], bins=30)
    ax.set_xlabel("ask() wall time per question (ms)")
    ax.set_ylabel("questions")
    ax.set_title("latency")
    fig.tight_layout()
    fig.savefig(out / "latency.png", dpi=110)
    plt.close(fig)
    return ["hit_by_type.png", "latency.png"]


def markdown(run: dict, chart_files: list[str]) -> str:
    c, agg = run["config"], run["aggregate"]
    judge_status = c.get("judge")
    trade, best = tradeoff_table(run["items"], c["threshold"])
    baselines = "".join(f"- `{n}`: {d}\n" for n, d in (c.get("baselines") or {}).items())
    parts = [
        f"# rag eval: {c['split']} split ({len(run['items'])} items)\n",
        f"{c['created']} · index `{c['index']}` · model `{c['embed_model']}` · backend `{c['backend']}` "
        f"· k={c['k']} · question file `{c['file']}`\n",
        "## Retrieval (answerable items)\n", retrieval_table(agg, c.get("corpus")), "",
        "hit@k: the top-k passages hold a gold quote (all quotes for needs_all items). MRR: 1/rank of "
        "that depth, within 10. budget@N: passages taken in rank order while their words fit N. "
        "Compare systems at equal context size (budget@N): a system with few, long passages gets "
        "hit@k cheaply (9 passages of ~880 words make hit@10 the whole episode). rag's ranking comes "
        f"from search(k={c['depth']}); its answers use k={c['k']}.\n",
        "## Answers\n", answer_table(agg, judge_status), "",
        "Refusal P/R: unanswerable items are the positives. False refusals: refused answerable items. "
        "Citation validity: non-refused answers with at least one citation, all of them pointing into a "
        "passage retrieved for that answer (time within its span ±5 s). Citation support: non-refused "
        "answerable answers where at least one cited passage holds a gold quote. Quote support: the "
        "same, but the cited sentences themselves must hold it (what the reader is shown). Answer "
        "words p50: median length of the non-refused answers.\n",
        "## How sure (95% intervals)\n", interval_table(agg), "",
        "Wilson score intervals: where each share would fall on other questions of the same kind. Two "
        "systems whose intervals overlap on one set are not shown apart by it.\n",
        "## By type\n", type_table(agg, judge_status), "",
        "Follow-ups: the second turn, asked with history=[(first question, first answer)]; "
        "'followup turn 1' is the first question against history_gold_quotes.\n",
    ]
    if baselines:
        parts += ["## Baselines\n", "Built in-process from the same episode text (turns flattened with "
                  "speaker labels, chapters ignored); every system gets the same query (rag's standalone "
                  "question). No-overlap windows can cut a gold quote in two; the 80% fallback recovers a quote "
                  "cut near its end, one cut near its middle counts as a miss.\n", baselines]
    parts += ["## Refusal trade-off (extractive confidence)\n",
              "Refuse when confidence < threshold. Confidence is `rag.answer.refusal.confidence` on "
              "the hits of each answer.\n", trade, "",
              f"Recommended by `calibrate` (max recall with false refusals <= 0.10): **{fmt(best, 4)}**"
              + (" — tune on dev only." if c["split"] != "dev" else "") + "\n"]
    parts += ["## Charts\n"] + [f"![{f}]({f})\n" for f in chart_files]
    parts += ["## Gold matching\n", "A passage holds a quote when the normalised quote (eval/validate.py "
              "`normalise`) is a substring of the passage's normalised text without speaker labels, or when a "
              "contiguous run of >= 80% of the quote's words occurs in it (quotes cut at a chunk edge).\n"]
    return "\n".join(parts)


def write_run(run: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(run, indent=1, ensure_ascii=False, default=str))
    files = charts(run, out)
    (out / "report.md").write_text(markdown(run, files))


def terminal_summary(run: dict) -> str:
    agg, status = run["aggregate"], run["config"].get("judge")
    return "\n\n".join(["Retrieval (answerable items)", retrieval_table(agg, run["config"].get("corpus")), "Answers",
                        answer_table(agg, status), "95% intervals", interval_table(agg),
                        "By type", type_table(agg, status)])


def flat_metrics(agg: dict) -> dict:
    o, out = agg["overall"], {}
    for k in RETRIEVAL_KEYS:
        out[k] = o["retrieval"][k]
    for k in ("refusal_precision", "refusal_recall", "false_refusal_rate"):
        out[k] = o["refusal"][k]
    for k in ("citation_validity", "citation_support", "quote_support", "answer_words_p50",
              "latency_p50_s", "latency_p95_s"):
        out[k] = o.get(k)  # older runs lack the newer metrics
    for n, r in (o.get("baselines") or {}).items():
        for k in ("hit@5", "mrr"):
            out[f"{n} {k}"] = r[k]
    for t, g in agg["by_type"].items():
        out[f"{t} hit@5"] = g["retrieval"]["hit@5"]
    return out


def compare(run_a: Path, run_b: Path) -> str:
    a = json.loads((Path(run_a) / "results.json").read_text())
    b = json.loads((Path(run_b) / "results.json").read_text())
    fa, fb = flat_metrics(a["aggregate"]), flat_metrics(b["aggregate"])
    rows = []
    for k in list(dict.fromkeys(list(fa) + list(fb))):
        va, vb = fa.get(k), fb.get(k)
        d = vb - va if isinstance(va, (int, float)) and isinstance(vb, (int, float)) else None
        rows.append([k, va, vb, (f"{d:+.3f}" if d is not None else "-")])
    head = (f"A: {run_a} ({a['config']['split']}, {len(a['items'])} items)\n"
            f"B: {run_b} ({b['config']['split']}, {len(b['items'])} items)\n")
    if a["config"]["split"] != b["config"]["split"]:
        head += "warning: the runs are on different splits\n"
    return (head + "\n" + table(["metric", "A", "B", "B - A"], rows) + "\n\n"
            + "Paired, on the questions both runs asked: how many each run gets and the other does not, "
              "and the two-sided sign test's p (small: the difference is unlikely to be chance).\n\n"
            + paired_table(a["items"], b["items"]))


# What each paired share reads of an item: which items count, and whether the item "gets" it.
PAIRED = (("hit@5", lambda r: r["answerable"] and r.get("metrics"), lambda r: bool(r["metrics"]["hit@5"])),
          ("quote support", lambda r: r["answerable"] and r.get("quote_support") is not None,
           lambda r: bool(r["quote_support"])),
          ("refusal R", lambda r: not r["answerable"], lambda r: bool(r["refused"])),
          ("false refusals", lambda r: r["answerable"], lambda r: bool(r["refused"])))


def paired_table(items_a: list[dict], items_b: list[dict]) -> str:
    """Each share compared question by question (``metrics.sign_test``): two runs over the same
    questions differ where one gets a question the other does not, and only there."""
    by_id = {r["id"]: r for r in items_b}
    pairs = [(r, by_id[r["id"]]) for r in items_a if r["id"] in by_id]
    rows = []
    for name, counts, gets in PAIRED:
        both = [(x, y) for x, y in pairs if counts(x) and counts(y)]
        only_a = sum(gets(x) and not gets(y) for x, y in both)
        only_b = sum(gets(y) and not gets(x) for x, y in both)
        rows.append([name, len(both), only_a, only_b, M.sign_test(only_a, only_b) if both else None])
    return table(["share", "questions", "only A", "only B", "p"], rows)
