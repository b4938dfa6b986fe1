"""The ONNX graph of a BERT sentence encoder, written from its safetensors weights without torch.

The graph computes what Hugging Face's `BertModel` does in eval mode (absolute positions,
exact GELU, post-layer-norm, eager attention with an additive mask) and nothing more: token
ids, attention mask and segment ids in, token vectors (`last_hidden_state`) out. Pooling and
normalising stay in numpy beside it, as with the graph torch used to export. The ops are the
ones that export used, in the same patterns, so ONNX Runtime fuses them the same way.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.errors import EmbeddingError

OPSET = 17
# IR 8 with opset 17: what torch wrote, loadable by every ONNX Runtime qa accepts.
IR_VERSION = 8
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT = "last_hidden_state"
# What an attention score becomes where the mask is 0: the lowest float32, as transformers uses.
MASKED = float(np.finfo(np.float32).min)


@dataclass(frozen=True)
class BertShape:
    """The sizes of a BERT encoder, from its config.json."""

    hidden: int
    heads: int
    layers: int
    epsilon: float

    @property
    def head_size(self) -> int:
        return self.hidden // self.heads


def bert_shape(folder: Path) -> BertShape:
    """The encoder's sizes; a model this graph does not compute faithfully is refused."""
    config = json.loads((folder / "config.json").read_text())
    unsupported = {
        "model_type": (config.get("model_type"), "bert"),
        "hidden_act": (config.get("hidden_act"), "gelu"),
        "position_embedding_type": (config.get("position_embedding_type", "absolute"), "absolute"),
    }
    for field, (value, wanted) in unsupported.items():
        if value != wanted:
            raise EmbeddingError(f"{folder}: {field} {value!r} is not supported (only {wanted!r}).")
    return BertShape(
        hidden=config["hidden_size"],
        heads=config["num_attention_heads"],
        layers=config["num_hidden_layers"],
        epsilon=config.get("layer_norm_eps", 1e-12),
    )


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """The weights by BertModel's names (a `bert.` prefix, as in task checkpoints, dropped)."""
    from safetensors.numpy import load_file

    weights = load_file(path)
    return {name.removeprefix("bert."): array for name, array in weights.items()}


def build_graph(weights: dict[str, np.ndarray], shape: BertShape):
    """The encoder as an onnx.ModelProto, with dynamic batch and sequence axes."""
    from onnx import TensorProto, helper

    graph = GraphBuilder(weights)
    hidden = embed(graph, shape)
    mask = additive_mask(graph)
    for layer in range(shape.layers):
        hidden = encoder_layer(graph, hidden, mask, f"encoder.layer.{layer}", shape)
    graph.node("Identity", hidden, output=OUTPUT)
    axes = ["batch", "sequence"]
    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, axes) for name in INPUTS]
    output = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [*axes, shape.hidden])
    body = helper.make_graph(graph.nodes, "bert", inputs, [output], graph.initializers)
    model = helper.make_model(
        body, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qa"
    )
    # No onnx.checker pass: ONNX Runtime validates the graph as it loads it, and the vectors
    # are checked after.
    model.ir_version = IR_VERSION
    return model


class GraphBuilder:
    """Nodes and initializers of one graph; every value gets a fresh, readable name."""

    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list = []
        self.initializers: list = []
        self._count = 0

    def node(self, op: str, *inputs: str, output: str | None = None, **attributes) -> str:
        from onnx import helper

        self._count += 1
        output = output or f"{op}_{self._count}"
        self.nodes.append(helper.make_node(op, list(inputs), [output], **attributes))
        return output

    def constant(self, value, dtype=np.float32) -> str:
        return self.tensor(f"constant_{len(self.initializers)}", np.array(value, dtype))

    def tensor(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        # A transposed view is laid out row by row as its bytes are copied: no second copy.
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name: str, transpose: bool = False) -> str:
        if name not in self.weights:
            raise EmbeddingError(f"The model's weights have no {name!r}.")
        array = self.weights[name]
        return self.tensor(f"{name}.T" if transpose else name, array.T if transpose else array)


def embed(graph: GraphBuilder, shape: BertShape) -> str:
    """Word + position + segment embeddings, layer-normalised."""
    words = graph.node("Gather", graph.weight("embeddings.word_embeddings.weight"), "input_ids")
    segments = graph.node(
        "Gather", graph.weight("embeddings.token_type_embeddings.weight"), "token_type_ids"
    )
    # The first `sequence` rows of the position table, broadcast over the batch.
    length = graph.node("Shape", "input_ids", start=1, end=2)
    positions = graph.node(
        "Slice",
        graph.weight("embeddings.position_embeddings.weight"),
        graph.constant([0], np.int64),
        length,
        graph.constant([0], np.int64),
    )
    summed = graph.node("Add", graph.node("Add", words, segments), positions)
    return layer_norm(graph, summed, "embeddings.LayerNorm", shape)


def additive_mask(graph: GraphBuilder) -> str:
    """0 where a token may be attended to, the lowest float where it is padding: [b, 1, 1, s]."""
    keep = graph.node("Cast", "attention_mask", to=9)  # BOOL
    scores = graph.node("Where", keep, graph.constant(0.0), graph.constant(MASKED))
    return graph.node("Unsqueeze", scores, graph.constant([1, 2], np.int64))


def encoder_layer(graph: GraphBuilder, x: str, mask: str, prefix: str, shape: BertShape) -> str:
    """Self-attention then the feed-forward block, each added back and layer-normalised."""
    attended = self_attention(graph, x, mask, f"{prefix}.attention.self", shape)
    attended = dense(graph, attended, f"{prefix}.attention.output.dense")
    x = layer_norm(
        graph, graph.node("Add", attended, x), f"{prefix}.attention.output.LayerNorm", shape
    )
    inner = gelu(graph, dense(graph, x, f"{prefix}.intermediate.dense"))
    out = dense(graph, inner, f"{prefix}.output.dense")
    return layer_norm(graph, graph.node("Add", out, x), f"{prefix}.output.LayerNorm", shape)


def self_attention(graph: GraphBuilder, x: str, mask: str, prefix: str, shape: BertShape) -> str:
    """Scaled dot-product attention over `heads` heads, merged back to [b, s, hidden]."""
    split = graph.constant([0, 0, shape.heads, shape.head_size], np.int64)

    def heads(name: str, perm: list[int]) -> str:
        projected = dense(graph, x, f"{prefix}.{name}")
        return graph.node("Transpose", graph.node("Reshape", projected, split), perm=perm)

    query = heads("query", [0, 2, 1, 3])
    key = heads("key", [0, 2, 3, 1])  # transposed for query @ key
    value = heads("value", [0, 2, 1, 3])
    scores = graph.node("MatMul", query, key)
    scores = graph.node("Mul", scores, graph.constant(1 / math.sqrt(shape.head_size)))
    weights = graph.node("Softmax", graph.node("Add", scores, mask), axis=-1)
    context = graph.node("Transpose", graph.node("MatMul", weights, value), perm=[0, 2, 1, 3])
    return graph.node("Reshape", context, graph.constant([0, 0, shape.hidden], np.int64))


def dense(graph: GraphBuilder, x: str, prefix: str) -> str:
    # torch's Linear keeps weights as [out, in]; MatMul wants [in, out].
    product = graph.node("MatMul", x, graph.weight(f"{prefix}.weight", transpose=True))
    return graph.node("Add", graph.weight(f"{prefix}.bias"), product)


def gelu(graph: GraphBuilder, x: str) -> str:
    """Exact GELU, x * (1 + erf(x / sqrt 2)) / 2, in the pattern ONNX Runtime fuses into one op."""
    erf = graph.node("Erf", graph.node("Div", x, graph.constant(math.sqrt(2))))
    scaled = graph.node("Mul", x, graph.node("Add", erf, graph.constant(1.0)))
    return graph.node("Mul", scaled, graph.constant(0.5))


def layer_norm(graph: GraphBuilder, x: str, prefix: str, shape: BertShape) -> str:
    return graph.node(
        "LayerNormalization",
        x,
        graph.weight(f"{prefix}.weight"),
        graph.weight(f"{prefix}.bias"),
        axis=-1,
        epsilon=shape.epsilon,
    )
