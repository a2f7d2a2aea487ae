"""Entry point of `rag eval` (registered in rag/cli.py)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence

from .metrics import REPO_ROOT, load_items

DEFAULT_FILE = REPO_ROOT / "eval" / "questions.jsonl"


def progress_bar(stream=None):
    """A redrawn bar on a terminal; on a pipe or log file, a plain line every 10% (no ``\r`` soup)."""
    stream = stream or sys.stderr
    start = time.perf_counter()
    tty = hasattr(stream, "isatty") and stream.isatty()
    shown = {"tenth": -1}

    def show(done: int, total: int, label: str) -> None:
        elapsed = time.perf_counter() - start
        if not tty:
            tenth = 10 * done // total if total else 10
            if tenth > shown["tenth"]:
                shown["tenth"] = tenth
                stream.write(f"{done}/{total} items, {elapsed:.1f}s\n")
                stream.flush()
            return
        width = 30
        filled = int(width * done / total) if total else width
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {elapsed:5.1f}s {label:<8}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show


def select(items: Sequence[dict], split: str) -> list[dict]:
    return [it for it in items if split == "all" or it.get("split") == split]


def run_eval(assistant, items: Sequence[dict], *, split: str = "test", k: int = 5,
             backend: str | None = None, out: Path | None = None, baselines: bool = False,
             judge: bool = False, chat_model=None, file: str = "", progress=None,
             embedder=None) -> dict:
    """Evaluate, write the run folder when ``out`` is given, and return the run dict."""
    from . import report, runner

    judge_obj, judge_status = None, None
    if judge:
        from .judge import make_judge

        judge_obj = make_judge(assistant.config, chat_model or assistant.chat_model)
        judge_status = None if judge_obj else "not run (no chat model)"
    else:
        judge_status = "not run"
    built = []
    if baselines:
        from .baselines import build_baselines

        built = build_baselines(assistant, embedder)
    results = runner.evaluate(assistant, items, k=k, backend=backend, baselines=built,
                              judge=judge_obj, progress=progress)
    run = {
        "config": {
            "created": time.strftime("%Y-%m-%d %H:%M:%S"), "file": str(file), "split": split, "k": k,
            "index": assistant.name, "embed_model": assistant.index.model,
            "backend": backend or assistant.backend, "depth": runner.DEPTH,
            "threshold": assistant.extractive.policy.threshold,
            "baselines": {b.name: b.description for b in built},
            "corpus": _corpus(assistant, built),
            "judge": judge_status if judge_obj is None else f"ok ({judge_obj.name})",
        },
        "aggregate": runner.aggregate(results),
        "items": results,
    }
    if out is not None:
        report.write_run(run, Path(out))
    return run


def _corpus(assistant, baselines) -> dict:
    from .metrics import words_of

    sizes = {"rag": [words_of(" ".join(s.text for s in c.sentences)) for c in assistant.index.chunks]}
    sizes.update({b.name: [p["words"] for p in b.passages] for b in baselines})
    return {n: {"passages": len(w), "mean_words": round(sum(w) / max(len(w), 1))} for n, w in sizes.items()}


def run(args) -> int:
    from ..api import Assistant
    from ..errors import RagError
    from . import report

    if getattr(args, "compare", None):
        a, b = args.compare
        text = report.compare(Path(a), Path(b))
        print(text)
        (Path(b) / "compare.md").write_text(f"# Compare\n\n{text}\n")
        print(f"\nwritten to {Path(b) / 'compare.md'}", file=sys.stderr)
        return 0
    if getattr(args, "catalog", None) is not None:
        from . import catalog

        out = Path(args.out) if args.out else REPO_ROOT / "eval" / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-catalog"
        try:
            assistant = Assistant.load(args.index, backend="extractive")
            print(catalog.run(args, assistant, out, progress=progress_bar()))
        except RagError as e:
            print(f"rag eval: {e}", file=sys.stderr)
            return 2
        print(f"\nrun folder: {out}  (catalog.json, catalog.md)")
        return 0
    path = Path(args.file) if args.file else DEFAULT_FILE
    items = select(load_items(path), args.split)
    if not items:
        print(f"no items in split {args.split!r} of {path}", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else REPO_ROOT / "eval" / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{args.split}"
    try:
        print(f"loading index ({args.index or 'default'}) ...", file=sys.stderr)
        assistant = Assistant.load(args.index, backend=args.backend or "auto")
        run_ = run_eval(assistant, items, split=args.split, k=args.k, backend=args.backend, out=out,
                        baselines=args.baselines, judge=args.judge, file=str(path),
                        progress=progress_bar())
    except RagError as e:
        print(f"rag eval: {e}", file=sys.stderr)
        return 2
    print(report.terminal_summary(run_))
    print(f"\nrun folder: {out}  (results.json, report.md, *.png)")
    return 0
