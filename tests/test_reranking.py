"""The reranker: the answer's stretches rescored by it, its probability in the refusal, the ONNX
graph equal to the torch cross-encoder it was trained as, and the settings that select it."""

import json

import numpy as np
import pytest

from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.refusal import RefusalPolicy
from rag.reranking import FakeReranker
from rag.types import Chunk, Evidence, Hit, Sentence, Signals


def two_stretch_hit() -> Hit:
    """One guest turn of six sentences: the first stage prefers the first three, which only
    sound related; the last three answer."""
    texts = ["We thought about video a lot in those years at the company.",
             "Video is a big part of what artists make with our tools today.",
             "The tools for video were always interesting to us as a team.",
             "We started the company in art school, five years ago in New York.",
             "That was the first place where the idea of the company came about.",
             "Art school is where the first version of the tools was built."]
    sentences = tuple(Sentence(text=t, speaker="Guest", start_s=60.0 + 10 * i, estimated=False)
                      for i, t in enumerate(texts))
    chunk = Chunk(id="c1", episode="e", chapter=None, speakers=("Guest",), start_s=60.0, end_s=120.0,
                  sentences=sentences)
    sims = {0: 0.62, 1: 0.61, 2: 0.60, 3: 0.50, 4: 0.49, 5: 0.48}
    return Hit(chunk=chunk, score=0.05, rank=1, matched=tuple(sims), scores={
        "dense": 0.6, "sentence": 0.62, "sentence_scores": sims,
        "dense_rank": 1, "bm25_rank": 1})


def asked(question: str, hits) -> tuple:
    e = Evidence.of(question, hits, Signals(coverage=1.0, local_coverage=1.0, semantic_coverage=1.0, answer=None))
    return e.question, e


class Prefers:
    """A reranker that scores a stretch by whether it holds ``word``; its probability is fixed."""

    name = "prefers"

    def __init__(self, word: str, prob: float | None = None):
        self.word, self.prob, self.calls = word, prob, []

    def score(self, question, candidates):
        self.calls.append(list(candidates))
        return np.array([40.0 if self.word in c else 0.0 for c in candidates], dtype=np.float32)

    def probability(self, best):
        return self.prob


def test_the_reranker_decides_which_stretch_is_quoted():
    question = "Where did it all begin?"
    plain = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-1.0), max_sentences=3)
    assert "thought about video" in plain.answer(*asked(question, [two_stretch_hit()])).text
    reranker = Prefers("art school")
    answer = ExtractiveAnswerer(policy=RefusalPolicy(threshold=-1.0), max_sentences=3,
                                reranker=reranker).answer(*asked(question, [two_stretch_hit()]))
    assert "We started the company in art school" in answer.text
    assert "thought about video" not in answer.text
    # it read the question with the best stretches only, each as one text
    assert 1 <= len(reranker.calls[0]) <= 12 and all(isinstance(c, str) for c in reranker.calls[0])


def test_the_refusal_weighs_the_rerankers_probability():
    policy = RefusalPolicy(threshold=0.5, answer_weight=1.0, coverage_weight=0.0, type_weight=0.0)
    question = "Where did it all begin?"
    sure = ExtractiveAnswerer(policy=policy, reranker=Prefers("art school", prob=0.9))
    unsure = ExtractiveAnswerer(policy=policy, reranker=Prefers("art school", prob=0.1))
    assert not sure.answer(*asked(question, [two_stretch_hit()])).refused
    assert unsure.answer(*asked(question, [two_stretch_hit()])).refused


def test_the_fake_reranker_is_deterministic_and_counts_shared_words():
    fake = FakeReranker()
    scores = fake.score("where did runway start", ["Runway started in art school", "We like video"])
    assert scores[0] > scores[1] and np.array_equal(scores, fake.score("where did runway start",
                                                                       ["Runway started in art school",
                                                                        "We like video"]))


def test_settings_select_the_reranker_beside_the_adapter(tmp_path):
    from rag.config import reranker_path
    from rag.errors import InputError

    adapter = tmp_path / "adapter.safetensors"
    adapter.write_bytes(b"x")
    assert reranker_path({}, adapter) is None  # none trained: none used, no error
    with pytest.raises(InputError, match="RAG_RERANK is on but"):
        reranker_path({"RAG_RERANK": "on"}, adapter)
    (tmp_path / "reranker.safetensors").write_bytes(b"x")
    assert reranker_path({}, adapter) == tmp_path / "reranker.safetensors"
    assert reranker_path({"RAG_RERANK": "off"}, adapter) is None
    assert reranker_path({}, None) is None  # the plain model has no reranker
    with pytest.raises(InputError, match="not on or off"):
        reranker_path({"RAG_RERANK": "maybe"}, adapter)
    from rag.errors import ModelError
    from rag.reranking import load_cross

    with pytest.raises(ModelError, match="cannot read the reranker"):
        load_cross(tmp_path / "reranker.safetensors")


def test_a_reranker_elsewhere_is_used_only_for_the_adapter_it_records(tmp_path, monkeypatch):
    """Beside its adapter, or anywhere when it records that adapter's digest (a selector trained
    with ``--out``); one trained for another adapter is not used."""
    from types import SimpleNamespace

    from safetensors.numpy import save_file

    import rag.reranking as R

    def write(path, meta):
        path.parent.mkdir(parents=True, exist_ok=True)
        info = dict(meta, format=R.FORMAT, rank=2, alpha=4.0, layers=1, max_tokens=32)
        save_file({"embeddings.token_type_embeddings.weight": np.zeros((2, 4), np.float16),
                   "head.weight": np.zeros((1, 4), np.float32), "head.bias": np.zeros(1, np.float32),
                   "head.scale": np.ones(1, np.float32)}, str(path), metadata={"rag": json.dumps(info)})

    built = []
    monkeypatch.setattr(R, "CrossEncoderReranker", lambda *a, **k: built.append(a[1]) or "reranker")
    adapter = SimpleNamespace(path=tmp_path / "model" / "adapter.safetensors", digest="abc123abc123")
    embedder = SimpleNamespace(adapter=adapter, path=tmp_path / "minilm")
    write(tmp_path / "model" / "reranker.safetensors", {})
    write(tmp_path / "runs" / "mine" / "reranker.safetensors", {"adapter": "abc123abc123", "depth": 4})
    write(tmp_path / "runs" / "other" / "reranker.safetensors", {"adapter": "fff000fff000"})
    assert R.make_reranker(tmp_path / "model" / "reranker.safetensors", embedder) == "reranker"
    assert R.make_reranker(tmp_path / "runs" / "mine" / "reranker.safetensors", embedder) == "reranker"
    assert built[-1].settings == {"depth": 4}
    assert R.make_reranker(tmp_path / "runs" / "other" / "reranker.safetensors", embedder) is None
    assert R.make_reranker(tmp_path / "model" / "reranker.safetensors", SimpleNamespace(adapter=None)) is None
    assert len(built) == 2


torch = pytest.importorskip("torch")


def test_the_onnx_reranker_scores_as_the_torch_cross_encoder_it_was_trained_as(tmp_path):
    from rag.embedding import resolve_model_path
    from rag.reranking import CrossEncoderReranker, load_cross
    from rag.training.rerank import CrossEncoder, RerankRecipe, save_reranker

    recipe = RerankRecipe(layers=2, rank=4, alpha=8.0)
    model = CrossEncoder(resolve_model_path("all-MiniLM-L6-v2"), recipe)
    g = torch.Generator().manual_seed(0)
    for m in model.lora.values():  # a fresh LoRA is the identity: make it change something
        m.lora_B.data = torch.randn(m.lora_B.shape, generator=g) * 0.02
    model.head.weight.data = torch.randn(model.head.weight.shape, generator=g) * 0.1
    model.types.data[1] += 0.05
    path = tmp_path / "reranker.safetensors"
    save_reranker(path, model, meta={"calibration": {"weight": 0.5, "bias": -1.0}})
    weights = load_cross(path)
    for name, m in model.lora.items():  # the torch model must use the fp16-rounded matrices
        a, b = weights.lora.modules[name]
        m.lora_A.data, m.lora_B.data = torch.from_numpy(a), torch.from_numpy(b)
    model.types.data = torch.from_numpy(weights.types)
    model.model.eval()
    question = "Where did Runway get its start?"
    candidates = ["Runway started in art school, five years ago.", "We like video a lot.",
                  "A much longer stretch of the reply " * 30]
    with torch.inference_mode():
        want = model.scores([question] * 3, candidates).numpy()
    onnx = CrossEncoderReranker(resolve_model_path("all-MiniLM-L6-v2"), weights, cache_dir=tmp_path / "cache")
    assert np.abs(onnx.score(question, candidates) - want).max() < 1e-3
    assert abs(onnx.probability(2.0) - 1 / (1 + np.exp(-(0.5 * 2.0 - 1.0)))) < 1e-9
    # a second start reads the cached graph and scores the same
    again = CrossEncoderReranker(resolve_model_path("all-MiniLM-L6-v2"), weights, cache_dir=tmp_path / "cache")
    assert np.abs(again.score(question, candidates) - want).max() < 1e-3
    assert len(list((tmp_path / "cache").glob("rerank-*.onnx"))) == 1
    # Retrained in place: the new graph replaces the old one, and another reranker's graph stays.
    other = tmp_path / "other" / "reranker.safetensors"
    other.parent.mkdir()
    save_reranker(other, model, meta={"calibration": {"weight": 0.7, "bias": -1.0}})
    CrossEncoderReranker(resolve_model_path("all-MiniLM-L6-v2"), load_cross(other), cache_dir=tmp_path / "cache")
    model.head.bias.data += 0.5
    save_reranker(path, model, meta={"calibration": {"weight": 0.5, "bias": -1.0}})
    retrained = CrossEncoderReranker(resolve_model_path("all-MiniLM-L6-v2"), load_cross(path),
                                     cache_dir=tmp_path / "cache")
    graphs = sorted((tmp_path / "cache").glob("rerank-*.onnx"))
    assert len(graphs) == 2 and retrained.score(question, candidates)[0] != pytest.approx(want[0], abs=1e-2)
    sources = {json.loads(g.with_name(g.name + ".json").read_text())["reranker"] for g in graphs}
    assert sources == {str(path.resolve()), str(other.resolve())}
