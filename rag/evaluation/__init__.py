"""`rag eval`: retrieval and answer metrics over eval/questions.jsonl, baselines, reports, judge.

    from rag.evaluation import run_eval, calibrate
    run = run_eval(assistant, items, split="dev", out=Path("eval/runs/x"))
"""

from .metrics import calibrate, holds, load_items
from .cli import run_eval

__all__ = ["calibrate", "holds", "load_items", "run_eval"]
