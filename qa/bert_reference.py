"""BertModel's forward pass for one text, in plain numpy: what a built graph is checked against.

Written apart from `qa.onnx_graph` and without padding or masks, so a mistake in either the
graph's wiring or its handling of padded batches shows as a disagreement.
"""

import numpy as np

from qa.onnx_graph import BertShape


def reference_token_vectors(
    weights: dict[str, np.ndarray], shape: BertShape, ids: list[int], segments: list[int]
) -> np.ndarray:
    """Token vectors [tokens, hidden] of one unpadded text."""

    def linear(x: np.ndarray, name: str) -> np.ndarray:
        return x @ weights[f"{name}.weight"].T + weights[f"{name}.bias"]

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        centred = x - x.mean(axis=-1, keepdims=True)
        scale = np.sqrt((centred**2).mean(axis=-1, keepdims=True) + shape.epsilon)
        return centred / scale * weights[f"{name}.weight"] + weights[f"{name}.bias"]

    tokens = len(ids)
    x = (
        weights["embeddings.word_embeddings.weight"][ids]
        + weights["embeddings.position_embeddings.weight"][:tokens]
        + weights["embeddings.token_type_embeddings.weight"][segments]
    )
    x = norm(x, "embeddings.LayerNorm")
    for layer in range(shape.layers):
        prefix = f"encoder.layer.{layer}"
        query, key, value = (
            linear(x, f"{prefix}.attention.self.{name}")
            .reshape(tokens, shape.heads, shape.head_size)
            .transpose(1, 0, 2)
            for name in ("query", "key", "value")
        )
        scores = query @ key.transpose(0, 2, 1) / np.sqrt(shape.head_size)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        context = (scores / scores.sum(axis=-1, keepdims=True)) @ value
        context = context.transpose(1, 0, 2).reshape(tokens, shape.hidden)
        x = norm(
            linear(context, f"{prefix}.attention.output.dense") + x,
            f"{prefix}.attention.output.LayerNorm",
        )
        inner = linear(x, f"{prefix}.intermediate.dense")
        inner = 0.5 * inner * (1 + erf(inner / np.sqrt(2)))
        x = norm(linear(inner, f"{prefix}.output.dense") + x, f"{prefix}.output.LayerNorm")
    return x


def erf(x: np.ndarray) -> np.ndarray:
    """The error function to within 1.5e-7 (Abramowitz and Stegun 7.1.26): numpy has none."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1 / (1 + 0.3275911 * x)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1 - poly * np.exp(-x * x))
