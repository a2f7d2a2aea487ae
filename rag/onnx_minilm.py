"""An ONNX Runtime query encoder for BERT-family sentence-transformers models (all-MiniLM-L6-v2).

Why ONNX Runtime: the NumPy forward pass in ``minilm.py`` takes ~17 ms for a typical question
(18 word pieces) on the 2-core machine, much of it Python glue and small-matrix OpenBLAS calls under
the GIL. ONNX Runtime runs the whole graph in C++ (its optimiser fuses the bias into each Gemm, the
scale into the attention product and erf-GELU into one kernel), releases the GIL during ``run``,
and takes ~6 ms, most of it the six layers' matrix products themselves (compute-bound at this
size: fp32 leaves little more to gain). Two threads embed ~300 queries/s against ~100 with NumPy.
Importing it costs ~0.04 s and needs no torch, so cold one-shot commands stay fast.

Why the graph is built here from the weights: exporting through torch would need torch (the ~5 s
import this path exists to avoid), and no fp32 ONNX file of this model ships offline (the int8 one
on PyPI gives different vectors). ``build_model`` writes the computation of the checkpoint's
BertModel + mean pooling + Normalize — the same as ``minilm.NumpyMiniLM`` — with standard ONNX
operators, reading the architecture from ``config.json``; ``minilm.supports`` is the architecture
check for both. Agreement with sentence-transformers (< 1e-4) is checked in tests/test_embedding.py.

The built model is cached rather than built on every start: importing ``onnx``, building, checking
and serializing take ~0.8 s, starting a session on the cached files ~0.05 s. It is kept as three
files under ``<index_dir>/.cache/onnx/``: ``minilm-onnx-<key>.onnx`` (the graph, ~30 kB),
``.onnx.data`` (the weights, 90 MB, page-aligned so that ONNX Runtime maps them rather than parsing
and copying them) and ``.onnx.json`` (sizes and a probe vector, written last). The key is a hash of
the model's config files, the safetensors file's path, size and mtime, and ``GRAPH_VERSION``; every
write is atomic (tmp file + ``os.replace``), and files that fail the checks in
``OnnxMiniLM._load_cached`` are rebuilt, so ``onnx`` is imported only then. Index builds add a
fourth, ``minilm-onnx-<key>.int8.onnx``: the passage encoder (see ``OnnxMiniLM._bulk_session``).

The session runs each call on one thread (``intra_op_num_threads=1``): the matrices are small, and
parallelism comes from concurrent ``run`` calls (the server's threads, via ``coalesce.Coalescer``),
which ONNX Runtime allows on one session.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

import numpy as np

from . import minilm

# Bump when the graph built by ``build_model`` changes: cached files of other versions are ignored.
GRAPH_VERSION = 2  # 2: the token states are a second output (a passage's sentence windows pool them)
OPSET = 17  # LayerNormalization is a standard operator from opset 17
IR_VERSION = 8
OUTPUTS = ["sentence_embedding", "token_states"]
_KEY_META = "rag_cache_key"
_ALIGN = 64 * 1024  # external weights' offsets: multiples of any page size, so they can be mapped
# Encoded on every load of a cached model and compared with its vector recorded at build time.
_PROBE = "Probe: does the cached ONNX graph still give the model's vectors? 0123456789 ,.;:!?"


def available() -> bool:
    """True when onnxruntime can be imported (it is then the query encoder of choice)."""
    try:
        import onnxruntime  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken install counts as missing: NumPy still works
        return False
    return True


def supports(model_dir: str | Path) -> bool:
    """The architecture check is NumpyMiniLM's: both implement exactly the same model."""
    return minilm.supports(model_dir)


def _read_configs(d: Path) -> tuple[dict, int, bool]:
    config = json.loads((d / "config.json").read_text())
    st_config = {}
    if (d / "sentence_bert_config.json").exists():
        st_config = json.loads((d / "sentence_bert_config.json").read_text())
    max_seq_length = int(st_config.get("max_seq_length", 256))
    modules = json.loads((d / "modules.json").read_text())
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    return config, max_seq_length, normalize


def cache_key(model_dir: str | Path, adapter=None) -> str:
    """Names the graph for these weights and this builder: config files, safetensors size/mtime,
    and the retrieval adapter merged into them (its content digest), if any."""
    d = Path(model_dir)
    h = hashlib.sha256(f"rag-onnx-minilm/{GRAPH_VERSION}/opset{OPSET}\n".encode())
    if adapter is not None:
        h.update(f"adapter\0{adapter.digest}\0".encode())
    for name in ("config.json", "sentence_bert_config.json", "modules.json",
                 "1_Pooling/config.json"):
        p = d / name
        h.update(name.encode() + b"\0" + (p.read_bytes() if p.exists() else b"<missing>") + b"\0")
    st = (d / "model.safetensors").stat()
    h.update(f"{d.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


class _Graph:
    """An ONNX graph being written: its initializers and nodes, named as the outputs they make."""

    def __init__(self, weights: dict, eps: float):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.w, self.eps = weights, eps
        self.inits: list = []
        self.nodes: list = []

    def init(self, name: str, array) -> str:
        self.inits.append(self._numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, name: str, values, dtype=np.float32) -> str:
        return self.init(name, np.asarray(values, dtype=dtype))

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        self.nodes.append(self._helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def f32(self, name: str) -> np.ndarray:
        return self.w[name].astype(np.float32)

    def linear(self, x: str, prefix: str, out: str, weight=None, bias=None) -> str:
        # HF Linear weights are [out, in]; Gemm multiplies by [in, out] and adds the bias.
        weight = self.f32(prefix + ".weight").T if weight is None else weight
        bias = self.f32(prefix + ".bias") if bias is None else bias
        return self.node("Gemm", [x, self.init(prefix + ".weight", weight), self.init(prefix + ".bias", bias)], out)

    def layer_norm(self, x: str, prefix: str, out: str) -> str:
        return self.node("LayerNormalization", [x, self.init(prefix + ".weight", self.f32(prefix + ".weight")),
                                                self.init(prefix + ".bias", self.f32(prefix + ".bias"))],
                         out, axis=-1, epsilon=self.eps)


def build_model(model_dir: str | Path, key: str = "", weights_file: str | None = None,
                adapter=None, cross=None) -> tuple[bytes, bytes]:
    """The serialized ONNX model: input_ids, attention_mask [batch, seq] -> sentence_embedding
    [batch, hidden], and token_states [batch, seq, hidden] (the last layer, before pooling).

    With ``cross`` (a ``reranking.CrossWeights``: the trained reranker), the graph is that
    cross-encoder instead: its first ``cross.layers`` layers, with its LoRA deltas merged over the
    adapter's, read a question and a candidate as one sequence (a third input, token_type_ids:
    0 for the question, 1 for the candidate) and give one ``score`` per row: the scaled cosine of
    the two segments' mean-pooled states plus a linear head on their product
    (``training/rerank.py``).

    Returns ``(model, weights)``. With ``weights_file`` (a file name beside the model's), the
    weights are external data: ``weights`` holds them at 64 KiB-aligned offsets, which lets ONNX
    Runtime map the file instead of parsing and copying 90 MB of protobuf (session start ~50 ms
    instead of ~120 ms). Without it the weights are inside ``model`` and ``weights`` is empty.

    Padded positions (mask 0) are excluded from attention (an additive -10000, which ``exp`` turns
    into exactly 0) and from the mean, so a padded row gives the vector of the sequence alone.
    """
    import onnx
    from onnx import helper
    from safetensors.numpy import load_file

    from .adapters import merge

    d = Path(model_dir)
    config, _, normalize = _read_configs(d)
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    layers = int(config["num_hidden_layers"]) if cross is None else int(cross.layers)
    # Checkpoints differ on whether keys carry a "bert." prefix.
    w = {k.removeprefix("bert."): v for k, v in load_file(str(d / "model.safetensors")).items()}
    for lora in (adapter, cross.lora if cross is not None else None):
        if lora is not None:  # a tuned model: LoRA deltas folded into the weights (adapters.py)
            w = merge(w, lora)
    g = _Graph(w, float(config.get("layer_norm_eps", 1e-12)))
    x = _embeddings(g, cross)
    x = _encoder(g, x, hidden, heads, layers)
    graph = _pooled(g, x, hidden, normalize) if cross is None else _cross_score(g, x, hidden, cross)
    model = helper.make_model(graph, producer_name="rag.onnx_minilm",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    if key:
        helper.set_model_props(model, {_KEY_META: key})
    onnx.checker.check_model(model)  # < 2 GB: checks the in-memory proto
    return _serialized(model, weights_file)


def _embeddings(g: _Graph, cross) -> str:
    """Word + token type (0, or the cross-encoder's segment) + absolute position, then LayerNorm
    (as BertEmbeddings)."""
    node, init, const, f32 = g.node, g.init, g.const, g.f32
    words = node("Gather", [init("embeddings.word_embeddings.weight",
                                 f32("embeddings.word_embeddings.weight")), "input_ids"], "emb_words")
    node("Shape", ["input_ids"], "batch_seq")
    seq_len = node("Shape", ["input_ids"], "seq_len", start=1, end=2)
    positions = node("Slice", [init("embeddings.position_embeddings.weight",
                                    f32("embeddings.position_embeddings.weight")),
                               const("zero_1d", [0], np.int64), seq_len, const("axis0", [0], np.int64)],
                     "emb_positions")
    if cross is None:
        types = init("emb_token_type0", f32("embeddings.token_type_embeddings.weight")[0])
    else:
        types = node("Gather", [init("embeddings.token_type_embeddings.weight", cross.types), "token_type_ids"],
                     "emb_types")
    x = node("Add", [words, types], "emb_words_types")
    x = node("Add", [x, positions], "emb_sum")
    return g.layer_norm(x, "embeddings.LayerNorm", "emb_out")


def _encoder(g: _Graph, x: str, hidden: int, heads: int, layers: int) -> str:
    """The transformer layers, on a [batch * seq, hidden] matrix (every linear layer is one Gemm
    with its bias; only attention needs the [batch, heads, seq, head_dim] view). Returns the last
    layer's states as [batch, seq, hidden] ("encoded")."""
    from onnx import TensorProto

    node, const, linear, layer_norm, f32 = g.node, g.const, g.linear, g.layer_norm, g.f32
    head_dim = hidden // heads
    rows_shape = const("shape_rows", [-1, hidden], np.int64)
    x = node("Reshape", [x, rows_shape], "emb_rows")
    heads_shape = node("Concat", ["batch_seq", const("heads_dims", [heads, head_dim], np.int64)],
                       "shape_heads", axis=0)
    # Attention mask -> additive bias [batch, 1, 1, seq]; float mask for pooling.
    mask_4d = node("Unsqueeze", ["attention_mask", const("axes_1_2", [1, 2], np.int64)], "mask_4d")
    mask_4d = node("Cast", [mask_4d], "mask_4d_f", to=TensorProto.FLOAT)
    inverted = node("Sub", [const("one", 1.0), mask_4d], "mask_inverted")
    bias = node("Mul", [inverted, const("mask_neg", -10000.0)], "mask_bias")
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)

    scale = const("sqrt_head_dim", np.sqrt(head_dim))
    sqrt2 = const("sqrt2", np.sqrt(2.0))
    one, half = "one", const("half", 0.5)
    qkv_split = const("qkv_split", [hidden] * 3, np.int64)
    for i in range(layers):
        p = f"encoder.layer.{i}."
        t = f"l{i}_"
        # Query, key and value in one product (one wider matrix keeps the kernel busier).
        parts = [p + "attention.self." + name for name in ("query", "key", "value")]
        qkv = linear(x, p + "attention.self.qkv", t + "qkv",
                     weight=np.concatenate([f32(n + ".weight").T for n in parts], axis=1),
                     bias=np.concatenate([f32(n + ".bias") for n in parts]))
        g.nodes.append(g._helper.make_node("Split", [qkv, qkv_split], [t + "q", t + "k", t + "v"],
                                           name=t + "qkv_split", axis=1))
        q, k, v = (node("Reshape", [t + n, heads_shape], t + n + "_4d") for n in "qkv")
        q = node("Transpose", [q], t + "q_heads", perm=[0, 2, 1, 3])
        k = node("Transpose", [k], t + "k_heads_t", perm=[0, 2, 3, 1])
        v = node("Transpose", [v], t + "v_heads", perm=[0, 2, 1, 3])
        scores = node("Div", [node("MatMul", [q, k], t + "qk"), scale], t + "scores_scaled")
        probs = node("Softmax", [node("Add", [scores, bias], t + "scores")], t + "probs", axis=-1)
        ctx = node("Transpose", [node("MatMul", [probs, v], t + "ctx_heads")], t + "ctx_t", perm=[0, 2, 1, 3])
        ctx = node("Reshape", [ctx, rows_shape], t + "ctx")
        attn = linear(ctx, p + "attention.output.dense", t + "attn_out")
        x = layer_norm(node("Add", [attn, x], t + "attn_res"), p + "attention.output.LayerNorm", t + "attn_ln")
        # Feed-forward with exact (erf) GELU: 0.5 * h * (1 + erf(h / sqrt 2)).
        h = linear(x, p + "intermediate.dense", t + "inter")
        erf = node("Erf", [node("Div", [h, sqrt2], t + "gelu_div")], t + "gelu_erf")
        h = node("Mul", [node("Mul", [h, node("Add", [erf, one], t + "gelu_add")], t + "gelu_mul"), half],
                 t + "gelu")
        out = linear(h, p + "output.dense", t + "ffn_out")
        x = layer_norm(node("Add", [out, x], t + "ffn_res"), p + "output.LayerNorm", t + "out")
    hidden_shape = node("Concat", ["batch_seq", const("hidden_dim", [hidden], np.int64)], "shape_hidden", axis=0)
    return node("Reshape", [x, hidden_shape], "encoded")


def _inputs() -> list:
    from onnx import TensorProto, helper

    return [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])]


def _pooled(g: _Graph, x: str, hidden: int, normalize: bool):
    """The embedding model's outputs: the last layer's states, and their mean over unmasked tokens
    (unit length when the model has a Normalize module)."""
    from onnx import TensorProto, helper

    node, const = g.node, g.const
    axis1 = const("axes_1", [1], np.int64)
    mask_3d = node("Unsqueeze", ["mask_f", const("axes_2", [2], np.int64)], "mask_3d")
    node("Identity", [x], "token_states")
    summed = node("ReduceSum", [node("Mul", [x, mask_3d], "masked"), axis1], "pool_sum", keepdims=0)
    count = node("ReduceSum", [mask_3d, axis1], "pool_count", keepdims=0)
    count = node("Max", [count, const("min_count", 1e-9)], "pool_count_min")
    pooled = node("Div", [summed, count], "pooled" if normalize else "sentence_embedding")
    if normalize:
        norm = node("ReduceL2", [pooled], "norm", axes=[1], keepdims=1)
        norm = node("Max", [norm, const("min_norm", 1e-12)], "norm_min")
        node("Div", [pooled, norm], "sentence_embedding")
    return helper.make_graph(
        g.nodes, "sentence_embedding", _inputs(),
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden]),
         helper.make_tensor_value_info("token_states", TensorProto.FLOAT, ["batch", "seq", hidden])],
        initializer=g.inits)


def _cross_score(g: _Graph, x: str, hidden: int, cross):
    """The cross-encoder's output: per row, the scaled cosine of the question's and the
    candidate's mean states plus a linear head on their product."""
    from onnx import TensorProto, helper

    node, const, init = g.node, g.const, g.init
    axis1 = const("axes_1", [1], np.int64)
    mask_3d = node("Unsqueeze", ["mask_f", const("axes_2", [2], np.int64)], "mask_3d")

    def unit_mean(weights_3d: str, out: str) -> str:
        """The mean of the states over the positions ``weights_3d`` marks, unit length."""
        summed = node("ReduceSum", [node("Mul", [x, weights_3d], out + "_masked"), axis1], out + "_sum", keepdims=0)
        count = node("Max", [node("ReduceSum", [weights_3d, axis1], out + "_count", keepdims=0),
                             const(out + "_min_count", 1e-9)], out + "_count_min")
        pooled = node("Div", [summed, count], out + "_mean")
        norm = node("Max", [node("ReduceL2", [pooled], out + "_norm", axes=[1], keepdims=1),
                            const(out + "_min_norm", 1e-12)], out + "_norm_min")
        return node("Div", [pooled, norm], out)

    second = node("Mul", [node("Cast", [node("Unsqueeze", ["token_type_ids", const("axes_2c", [2], np.int64)],
                                             "types_3d")], "types_3d_f", to=TensorProto.FLOAT), mask_3d],
                  "second_3d")
    first = node("Sub", [mask_3d, second], "first_3d")
    both = node("Mul", [unit_mean(first, "question_vec"), unit_mean(second, "candidate_vec")], "both")
    cosine = node("ReduceSum", [both, axis1], "cosine", keepdims=0)
    head = node("Gemm", [both, init("head.weight", cross.head_weight.reshape(hidden, 1)),
                         init("head.bias", cross.head_bias.reshape(1))], "head_out")
    head = node("Reshape", [head, const("shape_flat", [-1], np.int64)], "head_flat")
    node("Add", [node("Mul", [cosine, const("head.scale", cross.scale)], "scaled"), head], "score")
    return helper.make_graph(
        g.nodes, "rerank_score",
        _inputs() + [helper.make_tensor_value_info("token_type_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch"])], initializer=g.inits)


def _serialized(model, weights_file: str | None) -> tuple[bytes, bytes]:
    """``(model, weights)``: the weights inside the model, or (``weights_file``) as external data
    at 64 KiB-aligned offsets of the returned blob."""
    from onnx import TensorProto
    from onnx.external_data_helper import set_external_data

    if weights_file is None:
        return model.SerializeToString(), b""
    blob = bytearray()
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) < 1024:
            continue
        blob += b"\0" * (-len(blob) % _ALIGN)
        offset = len(blob)
        blob += tensor.raw_data
        set_external_data(tensor, weights_file, offset, len(tensor.raw_data))
        tensor.ClearField("raw_data")
        tensor.data_location = TensorProto.EXTERNAL
    return model.SerializeToString(), bytes(blob)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def prune_cache(cache_dir: Path, *, keep: str, model_dir: Path, adapter_path: str = "") -> list[Path]:
    """Delete cached graphs (90 MB each) that no start will read again: those built for this model
    folder before (its files changed, or this builder did), for a model folder that is gone (an
    old virtual environment), or by a version that recorded no folder. Graphs of other models
    that still exist are kept, and so are graphs of the same model with another adapter (or none)
    that still exists: base and tuned graphs live side by side. Returns what was deleted."""
    gone: list[Path] = []
    here = str(Path(model_dir).resolve())
    for record in Path(cache_dir).glob("minilm-onnx-*.onnx.json"):
        key = record.name[len("minilm-onnx-"):-len(".onnx.json")]
        if key == keep:
            continue
        try:
            info = json.loads(record.read_text())
            folder, other = info.get("model_dir"), info.get("adapter", "")
        except (OSError, ValueError, AttributeError):
            folder, other = None, ""
        if folder is not None and folder != here and Path(folder).exists():
            continue
        if folder is not None and other != adapter_path and (not other or Path(other).exists()):
            continue
        gone += unlink_all((record, record.with_name(f"minilm-onnx-{key}.onnx"),
                            record.with_name(f"minilm-onnx-{key}.onnx.data"),
                            record.with_name(f"minilm-onnx-{key}.int8.onnx")))
    return gone


def unlink_all(paths) -> list[Path]:
    """Delete each of ``paths`` that exists; returns those deleted."""
    gone = []
    for path in paths:
        try:
            path.unlink()
            gone.append(path)
        except FileNotFoundError:
            pass
    return gone


class OnnxMiniLM:
    """Encodes texts to unit vectors exactly as the sentence-transformers model would (ONNX Runtime).

    ``cache_dir``: where the built graph is kept (``None``: build it in memory every time).
    ``built`` says whether this construction had to build the graph (False: read from the cache).
    """

    def __init__(self, model_dir: str | Path, cache_dir: str | Path | None = None, adapter=None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        d = Path(model_dir)
        self.config, self.max_seq_length, self.normalize = _read_configs(d)
        self.dim = int(self.config["hidden_size"])
        self.tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.no_padding()
        self._count_lock = threading.Lock()
        self._counter = None

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: no warnings on a user's terminal

        def session(source, threads: int = 1):
            options.intra_op_num_threads = threads
            return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])

        self._session_factory = session
        self._bulk = None
        self._bulk_lock = threading.Lock()

        key = cache_key(d, adapter)
        self.model_dir, self.key = d, key
        self.adapter = adapter
        self.built = False
        self.cache_path: Path | None = None
        self.session = None
        if cache_dir is not None:
            self.cache_path = Path(cache_dir) / f"minilm-onnx-{key}.onnx"
            self.session = self._load_cached(session, key)
        if self.session is None:
            self.built = True
            if self.cache_path is None:
                self.session = session(build_model(d, key, adapter=adapter)[0])
            else:
                model, weights = build_model(d, key, weights_file=self._weights_path().name,
                                             adapter=adapter)
                try:
                    # Weights, then the model that names them, then the record that vouches for
                    # both: an interrupted write leaves no record, so the next start rebuilds.
                    _write_atomic(self._weights_path(), weights)
                    _write_atomic(self.cache_path, model)
                    self.session = session(str(self.cache_path))
                    _write_atomic(self._record_path(), json.dumps({
                        "key": key, "sizes": [len(model), len(weights)],
                        "probe": self._probe().tolist(), "model_dir": str(d.resolve()),
                        "adapter": self._adapter_path()}).encode())
                    prune_cache(self.cache_path.parent, keep=key, model_dir=d,
                                adapter_path=self._adapter_path())
                except OSError:
                    # A read-only or full cache still gets a working encoder (built in memory).
                    self.session = session(build_model(d, key, adapter=adapter)[0])
                del model, weights
        self._check_io()

    def _adapter_path(self) -> str:
        return str(Path(self.adapter.path).resolve()) if self.adapter is not None else ""

    def _record_path(self) -> Path:
        assert self.cache_path is not None
        return self.cache_path.with_name(self.cache_path.name + ".json")

    def _weights_path(self) -> Path:
        assert self.cache_path is not None
        return self.cache_path.with_name(self.cache_path.name + ".data")

    def _probe(self) -> np.ndarray:
        return self.encode([_PROBE])[0]

    def _load_cached(self, session, key: str):
        """A session on the cached model, or None when it is missing or damaged.

        Checked cheaply instead of hashing all 90 MB (reading and hashing them would add ~0.1 s to
        every cold start, more than loading the session): the record, written last, must name this
        key and both files' sizes; ONNX Runtime must load the model; its metadata must carry the
        key; and a probe text must give the vector recorded at build time. That catches a
        truncated, foreign or garbled file and damage to any encoder weight; a flipped bit in the
        embedding row of a word the probe does not use would go unnoticed (delete the cache folder
        to rebuild).
        """
        try:
            record = json.loads(self._record_path().read_text())
            sizes = [self.cache_path.stat().st_size, self._weights_path().stat().st_size]
            if record.get("key") != key or record.get("sizes") != sizes:
                return None
            candidate = session(str(self.cache_path))
            if candidate.get_modelmeta().custom_metadata_map.get(_KEY_META) != key:
                return None
            self.session = candidate
            self._check_io()
            probe = np.asarray(record["probe"], dtype=np.float32)
            if probe.shape == (self.dim,) and np.abs(self._probe() - probe).max() < 1e-5:
                return candidate
        except Exception:  # noqa: BLE001 - unreadable, unparsable or wrong: rebuilt by the caller
            pass
        self.session = None
        return None

    def _check_io(self) -> None:
        names = [i.name for i in self.session.get_inputs()]
        out = self.session.get_outputs()
        if names != ["input_ids", "attention_mask"] or [o.name for o in out] != OUTPUTS:
            raise RuntimeError(f"unexpected ONNX model interface: {names} -> {[o.name for o in out]}")

    def _bulk_session(self):
        """The passage encoder: the same graph with its matrix products in int8, on one thread
        per call (``encode_bulk`` runs one call per core).

        Measured on 600 passages of the catalog, 2 cores: fp32 on two threads 31 a second, int8
        2 x 1 thread in batches of 512 word pieces 93 a second, at cosine 0.994 to the fp32
        vectors (0.990 at worst). Queries keep fp32. The int8 graph (23 MB) is cached beside the
        fp32 one as ``minilm-onnx-<key>.int8.onnx``, written atomically; quantizing takes ~5 s.
        """
        with self._bulk_lock:
            if self._bulk is None:
                self._bulk = self._session_factory(self._int8_model(), 1)
            return self._bulk

    def _int8_model(self) -> str | bytes:
        import logging
        import tempfile

        from onnxruntime.quantization import QuantType, quantize_dynamic

        if self.cache_path is not None and self._int8_path().exists():
            return str(self._int8_path())
        logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # its pre-processing hint
        with tempfile.TemporaryDirectory() as tmp:
            if self.cache_path is not None and self.cache_path.exists():
                # The cached graph, read into memory with its external weights. Given a path, the
                # quantizer writes a shape-inferred copy beside it and deletes it; beside the shared
                # cache, two processes building at once deleted each other's and one crashed.
                import onnx

                source = onnx.load(str(self.cache_path))
            else:
                source = Path(tmp) / "fp32.onnx"
                source.write_bytes(build_model(self.model_dir, self.key, adapter=self.adapter)[0])
                source = str(source)
            target = Path(tmp) / "int8.onnx"
            quantize_dynamic(source, str(target), weight_type=QuantType.QInt8, per_channel=True)
            data = target.read_bytes()
        if self.cache_path is not None:
            try:
                _write_atomic(self._int8_path(), data)
                return str(self._int8_path())
            except OSError:
                pass  # a read-only cache: the graph in memory works as well
        return data

    def _int8_path(self) -> Path:
        assert self.cache_path is not None
        return self.cache_path.with_name(self.cache_path.name[:-len(".onnx")] + ".int8.onnx")

    def _batches(self, lengths: list[int], max_rows: int) -> list[list[int]]:
        """Row numbers grouped by similar length, each group at most ``max_rows`` word pieces
        (padding included) so that little of each run is padding."""
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        groups, start = [], 0
        while start < len(order):
            end = start + 1
            # Sorted by length: the last sequence taken sets the padded width.
            while end < len(order) and (end - start + 1) * lengths[order[end]] <= max_rows:
                end += 1
            groups.append(order[start:end])
            start = end
        return groups

    def _run(self, ids: list[list[int]], session=None, states: bool = False):
        width = max(len(s) for s in ids)
        input_ids = np.zeros((len(ids), width), dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, s in enumerate(ids):
            input_ids[row, :len(s)] = s
            mask[row, :len(s)] = 1
        outputs = OUTPUTS if states else OUTPUTS[:1]
        result = (session or self.session).run(outputs, {"input_ids": input_ids, "attention_mask": mask})
        return result if states else result[0]

    def encode(self, texts: list[str], max_rows: int = 2048, session=None) -> np.ndarray:
        """Unit vectors for ``texts``; sequences of similar length are padded into one run, up to
        ``max_rows`` word pieces (padding included) per run."""
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch(texts)
        for rows in self._batches([len(e.ids) for e in encodings], max_rows):
            out[rows] = self._run([encodings[i].ids for i in rows], session)
        return out

    def _parallel(self, work, groups: list[list[int]]) -> None:
        """``work(group)`` for every group, one at a time per core (ONNX Runtime releases the GIL)."""
        from concurrent.futures import ThreadPoolExecutor

        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        threads = max(1, min(cores or 1, 8, len(groups)))
        if threads == 1:
            for g in groups:
                work(g)
            return
        with ThreadPoolExecutor(threads) as pool:
            for _ in pool.map(work, groups):
                pass

    def encode_bulk(self, texts: list[str]) -> np.ndarray:
        """Passage vectors (int8, every core): documents at index time."""
        return self.encode_spans(texts, [()] * len(texts))[0]

    def encode_spans(self, texts: list[str], spans: list[tuple], max_rows: int = 512):
        """Passage vectors, and a vector for each span of each text pooled from the same pass.

        ``spans[i]`` holds the spans of ``texts[i]``, each a tuple of ``(start, end)`` character
        ranges; a span's vector is the mean of the last layer's states of the word pieces that
        start inside its ranges, unit length: what the passage's own vector is, restricted to
        those words, read in the context of the whole passage (a sentence window gets the
        meaning its neighbours give it, at no cost of its own). Returns ``(vectors, span_vectors)``:
        span_vectors[i] is (len(spans[i]), dim); a span whose words lie past the model's
        truncation is a row of NaN (the caller embeds it on its own).
        """
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled = [np.full((len(s), self.dim), np.nan, dtype=np.float32) for s in spans]
        if not texts:
            return out, pooled
        session = self._bulk_session()
        encodings = self.tokenizer.encode_batch(texts)

        def work(rows: list[int]) -> None:
            vectors, states = self._run([encodings[i].ids for i in rows], session, states=True)
            out[rows] = vectors
            for row, i in enumerate(rows):
                if not spans[i]:
                    continue
                starts = np.array([a if b > a else -1 for a, b in encodings[i].offsets])
                for j, ranges in enumerate(spans[i]):
                    inside = np.zeros(len(starts), dtype=bool)
                    for a, b in ranges:
                        inside |= (starts >= a) & (starts < b)
                    if inside.any():
                        v = states[row, :len(starts)][inside].mean(axis=0)
                        pooled[i][j] = v / max(float(np.linalg.norm(v)), 1e-12)

        self._parallel(work, self._batches([len(e.ids) for e in encodings], max_rows))
        return out, pooled

    def count_tokens(self, text: str) -> int:
        """Word pieces including [CLS]/[SEP], without truncation."""
        # A tokenizer of its own: toggling truncation on the shared one would race with
        # encode() on another server thread.
        with self._count_lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                self._counter = Tokenizer.from_str(self.tokenizer.to_str())
                self._counter.no_truncation()
                self._counter.no_padding()
        return len(self._counter.encode(text).ids)
