"""rag.evaluation: metrics on hand-computed cases, and the runner on a tiny index with FakeEmbedder."""

import json
from argparse import Namespace
from pathlib import Path

import pytest

from rag.evaluation import metrics as M
from rag.evaluation.judge import parse_judgement

ITEMS = [
    {"id": "t1", "split": "test", "type": "factual", "question": "Where did Runway actually get its start?",
     "gold_quotes": ["Runway started in art school. So this is not really where AI companies get started usually"],
     "answer": "Runway started in art school.", "answerable": True},
    {"id": "t2", "split": "test", "type": "multi", "needs_all": True,
     "question": "What links the book Runway gives employees with his advice to young people?",
     "gold_quotes": ["sometimes going for the next stepping stone is the right approach",
                     "So really focusing on the next project, I think, for me has been really the way to go."],
     "answer": "Both favour the next stepping stone.", "answerable": True},
    {"id": "t3", "split": "test", "type": "followup", "history": ["What did the guest do before Runway?"],
     "question": "And how far back does his interest in AI go?",
     "gold_quotes": ["My interest in AI goes back to at least high school and before"],
     "history_gold_quotes": ["Before Runway I was working as a machine learning engineer, as some kind of "
                             "distributed systems engineer"],
     "answer": "To at least high school.", "answerable": True},
    {"id": "t4", "split": "test", "type": "unanswerable", "question": "How many employees does Runway have?",
     "gold_quotes": [], "answer": "", "answerable": False},
]


# --- metrics ---------------------------------------------------------------------------------

def test_holds_substring_and_fallback():
    q = "Runway started in art school. So this is not really where AI companies get started"
    assert M.holds("Chris asked. RUNWAY started in **art** school.\n So this is not  really where AI "
                   "companies get started, he said", q)
    assert M.holds("it's the state—of—the art", "It’s the state -- of -- the art")
    assert M.holds("**Anastasis:** Runway started in art school. So this is not really where AI", q)  # 11/14 words
    assert not M.holds("Runway started in art school. So this", q)                                   # 6/14 words
    assert not M.holds("something else entirely", q)


def test_hit_at_k_and_mrr():
    held = [[], [], [0], []]
    rank = M.first_hit_rank(held, 1, False)
    assert rank == 3
    assert [M.hit_at(rank, k) for k in (1, 3, 5)] == [0.0, 1.0, 1.0]
    assert M.reciprocal_rank(rank) == pytest.approx(1 / 3)
    assert M.reciprocal_rank(None) == 0.0
    assert M.first_hit_rank([[]] * 12 + [[0]], 1, False) is None  # beyond depth 10


def test_needs_all_union():
    held = [[0], [], [1]]
    assert M.first_hit_rank(held, 2, True) == 3
    assert M.first_hit_rank(held, 2, False) == 1
    assert not M.covered([[0], [0]], 2, True)


def test_budget_hit_stops_at_first_that_does_not_fit():
    held, words = [[], [], [0]], [200, 150, 100]
    assert M.budget_hit(held, words, 300, 1, False) == 0.0   # 200 fits, 350 does not: stop
    assert M.budget_hit(held, words, 600, 1, False) == 1.0
    m = M.retrieval_metrics(held, words, 1, False)
    assert m["budget@300"] == 0.0 and m["budget@600"] == 1.0 and m["hit@3"] == 1.0


def test_refusal_stats_and_calibrate():
    rows = [(False, True), (False, True), (False, False), (True, True), (True, False), (True, False)]
    s = M.refusal_stats(rows)
    assert s["refusal_precision"] == pytest.approx(2 / 3)
    assert s["refusal_recall"] == pytest.approx(2 / 3)
    assert s["false_refusal_rate"] == pytest.approx(1 / 3)
    results = [{"answerable": False, "confidence": c} for c in (0.1, 0.2, 0.6)] + \
              [{"answerable": True, "confidence": c} for c in (0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.96,
                                                               0.97, 0.98, 0.99, 0.991)]
    t = M.calibrate(results)  # 0.25 refuses 2/3 unanswerable and no answerable; 0.4 would cost 1/11
    assert 0.2 < t <= 0.3
    assert M.calibrate(results, max_false_refusals=0.1) == t
    assert M.calibrate(results, max_false_refusals=0.2) == pytest.approx(0.65)  # all 3; costs 0.3, 0.5: 2/11
    assert M.percentile([1, 2, 3, 4], 0.5) == 2.5


def test_a_share_comes_with_its_95_percent_wilson_interval():
    low, high = M.interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    low, high = M.interval(0, 10)                 # never below 0, and not empty at 0 of 10
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    assert M.interval(10, 10)[1] == 1.0 and M.interval(0, 0) is None
    wide, narrow = M.interval(20, 40), M.interval(500, 1000)   # fewer questions, less sure
    assert wide[1] - wide[0] > 2 * (narrow[1] - narrow[0])
    s = M.share([True, False, None, 1.0, 0.0])    # None is skipped
    assert s["n"] == 4 and s["share"] == 0.5 and (s["low"], s["high"]) == M.interval(2, 4)
    assert M.share([None]) is None


def test_two_runs_are_compared_question_by_question_with_a_sign_test():
    from rag.evaluation.report import paired_table

    assert M.sign_test(10, 0) == pytest.approx(2 / 1024)        # all ten the same way: unlikely chance
    assert M.sign_test(8, 2) == pytest.approx(2 * 56 / 1024)
    assert M.sign_test(5, 5) == 1.0 and M.sign_test(0, 0) == 1.0
    assert M.sign_test(2, 8) == M.sign_test(8, 2)

    def item(i, answerable, hit, quoted, refused):
        return {"id": f"q{i}", "answerable": answerable, "refused": refused,
                "metrics": {"hit@5": float(hit)} if answerable else None,
                "quote_support": (quoted if answerable and not refused else None)}

    a = [item(i, True, True, i < 4, False) for i in range(10)] + [item(10, False, False, None, True)]
    b = [item(i, True, True, i < 9, i == 9) for i in range(10)] + [item(10, False, False, None, False)]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:6]]
            for line in paired_table(a, b).splitlines()[2:]}
    # quote support: q9 refused by B is left out; q4-q8 are quoted by B only
    assert rows["quote support"] == ["9", "0", "5", f"{M.sign_test(0, 5):.3f}"]
    assert rows["hit@5"] == ["10", "0", "0", "1.000"]
    assert rows["refusal R"][:3] == ["1", "1", "0"] and rows["false refusals"][:3] == ["10", "0", "1"]
    assert paired_table(a, [dict(r, id="other") for r in b]).count("| -") >= 4   # nothing in common


def test_citation_valid():
    passages = {"c1": {"start_s": 100.0, "end_s": 160.0}}
    assert M.citation_valid({"passage_id": "c1", "start_s": 163.0}, passages)
    assert not M.citation_valid({"passage_id": "c1", "start_s": 170.0}, passages)
    assert not M.citation_valid({"passage_id": "c9", "start_s": 120.0}, passages)


def test_parse_judgement():
    assert parse_judgement('Sure! ```json\n{"faithfulness": 1, "correctness": 0.5, "reason": "{x}"}\n```') \
        ["correctness"] == 0.5
    assert parse_judgement('{"faithfulness": 2, "correctness": -1}')["faithfulness"] == 1.0
    assert parse_judgement("no json here") is None
    assert parse_judgement('{"faithfulness": "high"}') is None
    assert parse_judgement('{"verdict": "Partly", "faithfulness": 1, "correctness": 0.5}')["verdict"] == "partly"
    assert parse_judgement('{"verdict": "meh", "faithfulness": 1, "correctness": 0.5}')["verdict"] is None


# --- runner on a tiny index ------------------------------------------------------------------

@pytest.fixture(scope="module")
def assistant(tmp_path_factory):
    from rag.api import Assistant
    from rag.config import Config
    from rag.embedding import FakeEmbedder

    config = Config(index_dir=tmp_path_factory.mktemp("index"))
    return Assistant.load(config=config, embedder=FakeEmbedder(), backend="extractive")


@pytest.fixture(scope="module")
def run_dir(assistant, tmp_path_factory):
    from rag.evaluation import run_eval

    out = tmp_path_factory.mktemp("run")
    run_eval(assistant, ITEMS, split="test", out=out, baselines=True, judge=True, file="tiny")
    return out


def test_runner_writes_results_report_and_charts(run_dir):
    run = json.loads((run_dir / "results.json").read_text())
    assert [r["id"] for r in run["items"]] == ["t1", "t2", "t3", "t4"]
    r1 = run["items"][0]
    assert len(r1["retrieved"]) > 5 and {"rank", "hit@5", "mrr", "budget@600"} <= set(r1["metrics"])
    assert run["items"][3]["metrics"] is None and run["items"][2]["turn1"]["question"]
    agg = run["aggregate"]
    assert agg["overall"]["retrieval"]["n"] == 3 and "followup_turn1" in agg
    assert set(agg["overall"]["baselines"]) == {"window200-dense", "window200-bm25", "llamaindex1024-dense"}
    for name, b in run["items"][0]["baselines"].items():
        assert b["metrics"]["hit@10"] in (0.0, 1.0)
    assert (run_dir / "hit_by_type.png").stat().st_size > 1000
    assert (run_dir / "latency.png").stat().st_size > 1000
    report = (run_dir / "report.md").read_text()
    assert "window200-bm25" in report and "(in use)" in report and "hit_by_type.png" in report
    # no chat model: judge columns say so, never a number
    assert "not run (no chat model)" in report and "judge" not in agg["overall"]
    # quote support: the cited sentences themselves hold a gold quote (checked against the quotes)
    answered = [r for r in run["items"] if r["answerable"] and not r["refused"]]
    assert answered
    for r in answered:
        quoted = " ".join(c["quote"] for c in r["citations"])
        assert r["quote_support"] == bool(M.held_quotes(quoted, r["gold_quotes"]))
        assert r["answer_words"] == len(r["answer"].split())
        assert r["quote_support"] <= r["citation_support"]  # a quote lies in its passage
    assert "quote support" in report and "answer words p50" in report
    # every share that decides a comparison carries its number of questions and 95% interval
    got = agg["overall"]["intervals"]
    quoted = [r["quote_support"] for r in run["items"] if r["answerable"] and r["quote_support"] is not None]
    assert got["quote_support"]["n"] == len(quoted)
    assert got["quote_support"]["low"] <= got["quote_support"]["share"] <= got["quote_support"]["high"]
    assert got["hit@5"]["share"] == pytest.approx(agg["overall"]["retrieval"]["hit@5"])
    assert got["refusal_recall"]["n"] == 1          # t4, the one unanswerable item
    assert "## How sure (95% intervals)" in report and "95% interval" in report


def test_a_third_turn_is_asked_after_both_answers_before_it(assistant, monkeypatch):
    """A three-turn conversation's last turn is scored as a user would reach it: the first turn,
    then the second after its answer, then the third after both (not after the first alone)."""
    from rag.evaluation import runner

    asked = []
    ask = type(assistant).ask

    def spy(self, question, *args, history=(), **kw):
        asked.append((question, [q for q, _ in history]))
        return ask(self, question, *args, history=history, **kw)

    monkeypatch.setattr(type(assistant), "ask", spy)
    item = {"id": "c3", "type": "followup-3", "question": "And how far back does that interest go?",
            "history": ["What did the guest do before Runway?", "Why did he leave?"],
            "history_gold_quotes": [], "gold_quotes": ["My interest in AI goes back to at least high school"],
            "answerable": True}
    result = runner.run_item(assistant, item, k=5, backend="extractive")
    assert [q for q, _ in asked] == ["What did the guest do before Runway?", "Why did he leave?",
                                     "And how far back does that interest go?"]
    assert [h for _, h in asked] == [[], ["What did the guest do before Runway?"],
                                     ["What did the guest do before Runway?", "Why did he leave?"]]
    assert result["turn1"]["question"] == "What did the guest do before Runway?"
    assert runner.aggregate([result])["by_type"]["followup-3"]["n"] == 1


def test_bm25_window_baseline_finds_a_literal_quote(assistant):
    from rag.evaluation.baselines import build_baselines

    bm25 = {b.name: b for b in build_baselines(assistant)}["window200-bm25"]
    assert all(p["words"] <= 200 for p in bm25.passages)
    top = bm25.search("Runway started in art school AI companies", 3)
    assert any(M.holds(p["plain"], ITEMS[0]["gold_quotes"][0]) for p in top)


def test_judge_with_fake_chat_model(assistant, tmp_path):
    from rag.chat_models import FakeChatModel
    from rag.evaluation import run_eval

    model = FakeChatModel(['{"faithfulness": 0.75, "correctness": 1.0, "reason": "ok"}',
                           'garbage', '{"faithfulness": 0.25, "correctness": 0.5}'])
    run = run_eval(assistant, ITEMS[:3], split="test", judge=True, chat_model=model)
    j = run["aggregate"]["overall"]["judge"]
    assert j["scored"] == 2 and j["failed"] == 1
    assert j["faithfulness"] == pytest.approx(0.5) and j["correctness"] == pytest.approx(0.75)
    assert "Reference answer: Runway started in art school." in model.calls[0][-1]["content"]


def test_compare_and_cli(run_dir, tmp_path, capsys):
    from rag.evaluation import cli

    assert cli.run(Namespace(compare=[str(run_dir), str(run_dir)])) == 0
    out = capsys.readouterr().out
    assert "hit@5" in out and "+0.000" in out
    assert "Paired, on the questions both runs asked" in out and "| only A" in out
    assert (run_dir / "compare.md").exists()


def test_progress_bar_writes_plain_lines_when_not_a_terminal():
    import io

    from rag.evaluation.cli import progress_bar

    out = io.StringIO()  # not a tty: a log file or a pipe
    show = progress_bar(out)
    for i in range(101):
        show(i, 100, f"q{i:03d}")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert len(lines) == 11 and lines[0].startswith("0/100") and lines[-1].startswith("100/100")
