"""Training: mined pairs, the held-out list, LoRA merging (torch == NumPy == ONNX), `rag train`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.training.data import HELD_OUT_EPISODES, Pair, deduplicate, mine, mine_transcript, split_of

REPO = Path(__file__).resolve().parent.parent

EPISODE = """**Ada Host:** Welcome to the show! How are you doing today, Bob?

**Bob Guest:** Great, thanks for having me.

**Ada Host:** Glad you're here. Let's start.

**Bob Guest:** Sure.

**Ada Host:** So tell me, why did you start building compilers in the first place, back then?

**Bob Guest:** Yeah, so I started building compilers because I was frustrated with how slow the tools
were at my first job, and nobody else seemed to care about making them fast, so I did it myself
over a long summer and it turned into a company.

**Ada Host:** What happened next with the company after that summer?

**Bob Guest:** Yeah.

**Ada Host:** Did your investors ever push you toward a different market segment?

**Bob Guest:** This episode is brought to you by our sponsor, use the promo code and get a discount on
hosting with plenty of words here to pass the length filter for the sponsor read test.

**Ada Host:** How do you think about hiring engineers for a compiler team these days?

**Bob Guest:** We hire people who love debugging more than writing new code, because most of compiler
work is chasing down why one program behaves differently on one platform, and that takes patience
more than brilliance, in my experience over the years.
"""


def test_every_question_sets_episode_is_held_out():
    sets = [REPO / "eval" / "questions.jsonl", *sorted((REPO / "eval" / "episodes").glob("*/questions.jsonl"))]
    for path in sets:
        meta = json.loads(path.read_text(encoding="utf-8").splitlines()[0])["meta"]
        episode = meta.get("episode", "practical-ai-260")
        assert episode in HELD_OUT_EPISODES, f"{path} asks about {episode}, which training would see"


def test_pairs_are_a_question_then_another_speakers_real_answer():
    pairs = mine_transcript(EPISODE, "show/ep-1.md", "show")
    assert len(pairs) == 2  # greeting (opening turns), "Yeah." and the sponsor read are dropped
    first = pairs[0]
    assert first.question.startswith("So tell me, why did you start building compilers")
    assert first.answer.startswith("I started building compilers")  # "Yeah, so" is trimmed
    assert first.speaker == "Bob Guest" and first.asker == "Ada Host"
    assert first.passage().startswith("Bob Guest: I started")
    assert first.target.count(".") <= 3 and first.neighbour.startswith("What happened next")
    assert pairs[1].question.startswith("How do you think about hiring")


def test_duplicates_are_dropped_and_splits_are_by_episode(tmp_path):
    for n in range(30):  # distinct episodes
        (tmp_path / f"ep-{n}.md").write_text(EPISODE.replace("compilers", f"compilers{n}")
                                             .replace("debugging", f"debugging{n}"))
    (tmp_path / "copy.md").write_text(EPISODE.replace("compilers", "compilers0")
                                      .replace("debugging", "debugging0"))  # a re-published episode
    (tmp_path / "practical-ai-84.md").write_text(EPISODE)  # held out: never mined
    splits = mine(tmp_path)
    every = splits["train"] + splits["validation"]
    assert "practical-ai-84" not in {p.episode for p in every}
    assert {p.episode for p in splits["train"]}.isdisjoint({p.episode for p in splits["validation"]})
    assert all(split_of(p.episode) == side for side, ps in splits.items() for p in ps)
    assert 2 * 30 <= len(every) <= 2 * 31 and len({p.episode for p in every}) >= 30
    if split_of("copy") == split_of("ep-0"):  # the same answers twice in one split: kept once
        assert len({"copy", "ep-0"} & {p.episode for p in every}) == 1
    assert deduplicate(every + every) == deduplicate(every)


def test_a_question_can_be_given_without_the_words_it_shares_with_its_answer():
    from rag.training.train import without_shared

    passage = "Bob Guest: I started with neural networks in high school, with a few small projects."
    question = "So how did you get started working with neural networks, back in high school?"
    assert without_shared(question, passage) == "So how did you get working with back in"
    # every content word shared: the question stays as it is rather than becoming stopwords
    assert without_shared("Neural networks?", passage) == "Neural networks?"
    assert without_shared("What about compilers?", passage) == "What about compilers?"
    assert without_shared("-- so, neural networks?", passage) == "-- so, neural networks?"


torch = pytest.importorskip("torch")


def _random_adapter(tmp_path, rank=4):
    """A LoRA with non-zero B (a fresh one is the identity) written the way `rag train` writes it."""
    from rag.embedding import resolve_model_path
    from rag.training.lora import add_lora, export_modules, save_adapter
    from rag.training.train import Encoder

    enc = Encoder(resolve_model_path("all-MiniLM-L6-v2"))
    wrapped = add_lora(enc.model, rank, 2.0 * rank)
    g = torch.Generator().manual_seed(0)
    for m in wrapped.values():
        m.lora_B.data = torch.randn(m.lora_B.shape, generator=g) * 0.02
    path = tmp_path / "adapter.safetensors"
    save_adapter(path, export_modules(wrapped), rank=rank, alpha=2.0 * rank, meta={"name": "test"})
    # the torch model must use the fp16-rounded matrices the file holds
    from rag.training.lora import load_adapter

    adapter = load_adapter(path)
    for name, m in wrapped.items():
        a, b = adapter.modules[name]
        m.lora_A.data, m.lora_B.data = torch.from_numpy(a), torch.from_numpy(b)
    return enc, path


def test_a_merged_adapter_gives_the_lora_models_vectors_in_numpy_and_onnx(tmp_path):
    from rag.embedding import make_embedder
    from rag.minilm import NumpyMiniLM
    from rag.embedding import resolve_model_path
    from rag.training.lora import load_adapter

    enc, path = _random_adapter(tmp_path)
    texts = ["Why did Runway build a research team?", "Anastasis Germanidis: We needed our own models."]
    want = enc.encode(texts)
    base = make_embedder("all-MiniLM-L6-v2", cache_dir=tmp_path / "plain").embed(texts)
    assert np.abs(want - base).max() > 1e-2  # the adapter changes the vectors
    adapter = load_adapter(path)
    numpy_vecs = NumpyMiniLM(resolve_model_path("all-MiniLM-L6-v2"), adapter=adapter).encode(texts)
    assert np.abs(numpy_vecs - want).max() < 1e-4
    tuned = make_embedder("all-MiniLM-L6-v2", cache_dir=tmp_path / "cache", adapter_path=path)
    assert tuned.passage_encoder == "onnx" and tuned.name.startswith("all-MiniLM-L6-v2+test-")
    assert ((tuned.embed(texts) * want).sum(axis=1) > 0.98).all()  # passages: the int8 graph
    assert np.abs(tuned.embed_query(texts[0]) - want[0]).max() < 1e-4
    # base and tuned graphs live side by side in one cache: neither prunes the other
    make_embedder("all-MiniLM-L6-v2", cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "onnx").glob("*.onnx.json"))) == 2


def test_the_model_dir_setting_selects_an_adapter_and_refuses_a_bad_one(tmp_path):
    from rag.config import Config, adapter_path
    from rag.errors import InputError

    assert adapter_path({"RAG_MODEL_DIR": "off"}) is None
    (tmp_path / "adapter.safetensors").write_bytes(b"x")
    assert adapter_path({"RAG_MODEL_DIR": str(tmp_path)}) == tmp_path / "adapter.safetensors"
    with pytest.raises(InputError, match="holds no adapter"):
        Config.from_env({"RAG_MODEL_DIR": str(tmp_path / "missing")})
    from rag.embedding import make_embedder
    from rag.errors import ModelError

    with pytest.raises(ModelError, match="cannot read the retrieval adapter"):
        make_embedder("all-MiniLM-L6-v2", cache_dir=tmp_path, adapter_path=tmp_path / "adapter.safetensors")


def test_rag_train_on_a_folder_writes_an_adapter_and_resumes(tmp_path):
    corpus = tmp_path / "transcripts"
    corpus.mkdir()
    for n in range(60):  # 2 pairs each, unique answers so none is a duplicate
        (corpus / f"ep-{n}.md").write_text(EPISODE.replace("compilers", f"compilers{n}")
                                           .replace("debugging", f"debugging{n}"))
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "rag.cli", "train", str(corpus), "--out", str(out), "--steps", "2",
           "--rank", "2", "--benchmark-questions", "10", "--episodes", "2", "--per-episode", "2",
           "--reranker-steps", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "step 2/2" in proc.stderr and "ETA" in proc.stderr and "hit@5" in proc.stderr
    assert (out / "adapter.safetensors").stat().st_size < 500_000
    figures = json.loads((out / "figures.json").read_text())
    assert figures["recipe"]["steps"] == 2 and figures["benchmark"]["tuned"]["questions"] > 0
    # the reranker after it, with its benchmark and the calibration of its probability
    assert "reranker step 2/2" in proc.stderr
    assert figures["reranker"]["recipe"]["steps"] == 2 and figures["reranker"]["blend"]["questions"] > 0
    assert {"weight", "bias", "ece"} <= set(figures["reranker"]["calibration"])
    from rag.reranking import load_cross

    assert load_cross(out / "reranker.safetensors").calibration["weight"] == figures["reranker"]["calibration"]["weight"]
    assert "## The reranker" in (out / "MODEL_CARD.md").read_text()
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "resuming from step 2" in again.stderr
    assert "reranker: resuming from step 2" in again.stderr


def test_rag_train_on_listeners_questions_writes_an_adapter_its_fitted_answering_and_a_card(tmp_path):
    """`rag train --readers --corpus`: questions written for your own transcripts (as `rag
    questions` writes them) train the adapter; the selector, the refusal and the hybrid's weights
    are fitted with it and read back by rag."""
    import hashlib

    from rag.answer.extractive import answering_for

    transcripts, corpus = tmp_path / "transcripts", tmp_path / "questions"
    transcripts.mkdir()
    corpus.mkdir()
    names = [f"ep-{n}" for n in range(40)]
    val = [e for e in names if int(hashlib.sha256(e.encode()).hexdigest()[:8], 16) % 10 == 0]
    assert val and len(val) < len(names)            # the hash split leaves both sides non-empty
    for n, e in enumerate(names):
        text = EPISODE.replace("compilers", f"compilers{n}").replace("debugging", f"debugging{n}")
        (transcripts / f"{e}.md").write_text(text)
        items = [
            {"id": f"{e}-1", "episode": e, "question": "What got him started?", "answerable": True,
             "type": "why", "gold_quotes": ["frustrated with how slow the tools were at my first job"],
             "answer": "Slow tools.", "speaker": "Bob Guest"},
            {"id": f"{e}-2", "episode": e, "question": "Who does the team look for?", "answerable": True,
             "type": "listener", "gold_quotes": [f"people who love debugging{n} more than writing new code"],
             "answer": "Debuggers.", "speaker": "Bob Guest"},
            {"id": f"{e}-3", "episode": e, "question": "What do the founders drink?", "answerable": False,
             "why_unanswerable": "-", "absent_terms": ["coffee", "tea"]},
        ]
        (corpus / f"{e}.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "rag.cli", "train", str(transcripts), "--readers", "--corpus", str(corpus),
           "--out", str(out), "--steps", "2", "--rank", "2", "--benchmark-questions", "10"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "listeners' corpus: " in proc.stderr and "listeners' validation" in proc.stderr
    figures = json.loads((out / "figures.json").read_text())
    assert figures["listeners"]["tuned"]["questions"] == 2 * len(val)
    assert figures["answering"]["refusal"]["fitted"]["unanswerable"] == len(val)
    fitted = answering_for(out / "adapter.safetensors")
    # The hybrid's weights ship, and the refusal with the question prior (below); the refusal
    # fitted on the features alone and the selector do not.
    assert fitted.fusion and fitted.selector is None and fitted.policy is not None
    written = json.loads((out / "answering.json").read_text())
    assert set(written["not_used"]) == {"selector", "policy"}
    guard = written["figures"]["refusal"]["guard (#260 dev)"]   # held to #260's dev questions
    assert guard["fitted"]["answerable"] > 0 and guard["fitted"]["false_refusals"] <= guard["max_false_refusals"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "listeners' questions" in card and "answering.json" in card and "CC BY-SA 4.0" in card
    # The sentence head is fitted with it, beside the adapter, and rag's retriever reads it there.
    from rag.adapters import load_adapter, load_sentence_head, sentence_head_for

    head = load_sentence_head(out / "sentences.safetensors")
    assert head.u.shape == (384, 8) and "CC BY-SA 4.0" in head.meta["licence"]
    assert head.meta["figures"]["validation"]["with"]["questions"] > 0
    assert figures["sentence_head"]["recipe"]["questions"] == head.meta["recipe"]["questions"]
    assert "## The sentence head" in card
    assert sentence_head_for(load_adapter(out / "adapter.safetensors")) is not None
    # So is the question prior, and the refusal's weight on it goes in answering.json, refusing
    # hardly more of the answerable validation questions than the policy without it.
    from rag.adapters import question_prior_for

    prior = question_prior_for(load_adapter(out / "adapter.safetensors"))
    assert prior is not None and prior.meta["recipe"]["uncovered"] == len(names) - len(val)
    chosen, before = figures["question_prior"]["chosen"]["validation"], figures["question_prior"]["before"]["validation"]
    p = before["false_refusals"]
    assert chosen["false_refusals"] <= p + (p * (1 - p) / before["answerable"]) ** 0.5 + 1e-9
    assert chosen["unanswerable"] == len(val) and fitted.policy.threshold == figures["question_prior"]["policy"]["threshold"]
    assert fitted.policy.prior_weight == figures["question_prior"]["policy"]["prior_weight"]
    assert "## The question prior" in card

    # `rag train --selector`: the sentence selector for that adapter, on the same questions, its
    # depth and weight chosen on the validation episodes; rag reads it from beside the adapter and
    # keeps the adapter's refusal (the selector only chooses the stretch).
    cmd = [sys.executable, "-m", "rag.cli", "train", str(transcripts), "--selector", "--corpus", str(corpus),
           "--out", str(out), "--steps", "2", "--rank", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "selector data: " in proc.stderr and "chosen: depth" in proc.stderr
    from rag.reranking import load_cross

    settings = load_cross(out / "reranker.safetensors").settings
    assert settings["depth"] in (4, 6, 8, 12) and settings["weight"] > 0 and "policy" not in settings
    assert load_cross(out / "reranker.safetensors").calibration is None
    # --refusal fit: the refusal fitted with the selector's probability goes in the file too (it
    # resumes the finished run: nothing is trained again).
    fit = subprocess.run([sys.executable, "-m", "rag.training.selector", "--model-dir", str(out), "--catalog",
                          str(transcripts), "--corpus", str(corpus), "--steps", "2", "--rank", "2",
                          "--refusal", "fit", "--out", str(tmp_path / "fit")], capture_output=True, text=True,
                         timeout=600)
    assert fit.returncode == 0, fit.stderr[-3000:]
    assert "resuming from step 2" in fit.stderr
    refit = load_cross(tmp_path / "fit" / "reranker.safetensors")
    assert "threshold" in refit.settings["policy"] and refit.calibration is not None
    # `rag train --passages`: the passage reranker for that adapter, its depth and weight chosen on
    # the validation episodes by hit@5; rag reads it from beside the adapter too.
    cmd = [sys.executable, "-m", "rag.cli", "train", str(transcripts), "--passages", "--corpus", str(corpus),
           "--out", str(out), "--steps", "2", "--rank", "2"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "passage reranker data: " in proc.stderr and "chosen: depth" in proc.stderr
    reorder = load_cross(out / "passages.safetensors")
    assert reorder.meta["role"] == "passages" and reorder.settings["depth"] in (5, 8, 10, 15, 20)
    assert reorder.meta["figures"]["validation"]["hybrid"]["questions"] == 2 * len(val)
    env = dict(os.environ, RAG_MODEL_DIR=str(out), RAG_INDEX_DIR=str(tmp_path / "indexes"))
    probe = ("import json, rag; a = rag.Assistant.load(); e = a.extractive; "
             "print(json.dumps([e.rerank_depth, e.rerank_weight, e.policy.threshold, a.ask('Who is the guest?').text, "
             "a.retriever.reranker.settings]))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600, env=env)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    depth, weight, threshold, text, reordering = json.loads(loaded.stdout.splitlines()[-1])
    assert reordering == reorder.settings
    off = subprocess.run([sys.executable, "-c", "import rag; print(rag.Assistant.load().retriever.reranker)"],
                         capture_output=True, text=True, timeout=600, env=dict(env, RAG_RERANK="off"))
    assert off.returncode == 0 and off.stdout.split()[-1] == "None", off.stderr[-3000:]
    from rag.answer.refusal import POLICIES

    kept = POLICIES["all-MiniLM-L6-v2+podcast"].threshold      # the adapter's refusal, unchanged
    assert (depth, weight, threshold) == (settings["depth"], settings["weight"], kept)
    assert text
    no_adapter = subprocess.run([sys.executable, "-m", "rag.cli", "train", str(transcripts), "--selector",
                                 "--out", str(tmp_path / "none")], capture_output=True, text=True, timeout=120)
    assert no_adapter.returncode == 2 and "no adapter at" in no_adapter.stderr
