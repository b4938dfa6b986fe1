"""The local sentence-transformers model run by ONNX Runtime, so answering never imports torch.

The graph is exported once from the model's own weights (that one step needs torch) and cached
in the data directory; tokenizing, mean pooling and normalising repeat what sentence-transformers
does, so the vectors match it and collections built with either backend stay compatible.
"""

import contextlib
import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.atomic_files import write_atomically
from qa.bundled_model import bundled_model_path
from qa.errors import EmbeddingError

# Texts per inference. Small batches are faster here, not slower: on 1,259 news chunks
# (2 cores), 4 took 28 s and peaked at 271 MB, 8 took 31 s / 320 MB, 32 took 39 s / 617 MB;
# a batch's attention tensors grow with its size and stop fitting in cache.
BATCH_SIZE = 4
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
ONNX_OPSET = 17
# Questions whose vectors are kept: a chat session asks few, an eval run one at a time.
RECENT_QUERIES = 32
FALLBACK_HINT = "Set QA_EMBEDDING_BACKEND=torch to embed with sentence-transformers instead."


class OnnxEmbedder:
    """A sentence-transformers folder run by ONNX Runtime; exported once into `cache_dir`."""

    def __init__(self, name: str, cache_dir: Path) -> None:
        self.name = name
        self.cache_dir = cache_dir
        self._recent_queries: dict[str, list[float]] = {}

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        return load_onnx_model(self.name, self.cache_dir).encode(texts, progress).tolist()

    def warm_up(self) -> None:
        """Load the model now if its graph was exported already; a first export (slow, with
        torch) waits until something is really embedded."""
        if not self.cache_dir.is_dir():
            # Nothing exported here yet, and a warm-up creates no folder.
            return
        folder = bundled_model_path(self.name)
        if graph_path(self.name, folder, self.cache_dir).is_file():
            load_onnx_model(self.name, self.cache_dir)

    def embed_query(self, text: str) -> list[float]:
        # Retrieval and then the extractive answerer both need the question's vector.
        if text not in self._recent_queries:
            if len(self._recent_queries) >= RECENT_QUERIES:
                self._recent_queries.clear()
            self._recent_queries[text] = self.embed_documents([text])[0]
        return list(self._recent_queries[text])


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX Runtime session and the tokenizer that feeds it."""

    session: object  # onnxruntime.InferenceSession, imported lazily
    tokenizer: object  # tokenizers.Tokenizer
    input_names: frozenset[str]

    def encode(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Unit vectors in the order of `texts`; batches hold texts of similar length."""
        # sentence-transformers strips each text before tokenizing.
        encodings = self.tokenizer.encode_batch([text.strip() for text in texts])
        lengths = [len(encoding.ids) for encoding in encodings]
        vectors: np.ndarray | None = None
        for batch in length_batches(lengths):
            pooled = self._embed_batch([encodings[index] for index in batch])
            if vectors is None:
                vectors = np.empty((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[batch] = pooled
            if progress:
                progress(len(batch))
        return vectors if vectors is not None else np.empty((0, 0), dtype=np.float32)

    def _embed_batch(self, encodings: list) -> np.ndarray:
        inputs = batch_inputs(encodings)
        feed = {name: array for name, array in inputs.items() if name in self.input_names}
        (hidden,) = self.session.run(["last_hidden_state"], feed)
        return mean_pool_and_normalise(hidden, inputs["attention_mask"])


def length_batches(lengths: Sequence[int]) -> Iterator[list[int]]:
    """Indexes of texts in batches of similar length, shortest first.

    Every text of a batch is padded to its longest, and padding costs as much as text: a
    batch ends when the next text would more than double its shortest one's length.
    """
    batch: list[int] = []
    for index in sorted(range(len(lengths)), key=lengths.__getitem__):
        if batch and (len(batch) == BATCH_SIZE or lengths[index] > 2 * lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def batch_inputs(encodings: list) -> dict[str, np.ndarray]:
    """Token ids, mask and segment ids, padded to the longest text of this batch only."""
    length = max(len(encoding.ids) for encoding in encodings)
    inputs = {
        name: np.zeros((len(encodings), length), dtype=np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    for row, encoding in enumerate(encodings):
        size = len(encoding.ids)
        inputs["input_ids"][row, :size] = encoding.ids
        inputs["attention_mask"][row, :size] = 1
        inputs["token_type_ids"][row, :size] = encoding.type_ids
    return inputs


def mean_pool_and_normalise(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Average the token vectors a text really has (not padding), then scale to unit length."""
    mask = attention_mask[:, :, None].astype(np.float32)
    pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    return pooled / np.maximum(norms, 1e-12)


# One loaded model per weights file per process: long-lived processes (chat, eval, tests) that
# switch data directories neither export nor load it again.
_loaded: dict[tuple[str, tuple[int, ...]], OnnxModel] = {}


def load_onnx_model(name: str, cache_dir: Path) -> OnnxModel:
    """The model, from the cached graph; the first use exports the graph (slow, needs torch)."""
    folder = bundled_model_path(name)
    weights = weights_file(folder)
    key = (str(weights.resolve()), file_stamp(weights))
    if key not in _loaded:
        graph = cached_graph(name, folder, cache_dir)
        _loaded[key] = open_model(graph, folder)
    return _loaded[key]


def cached_graph(name: str, folder: Path, cache_dir: Path) -> Path:
    """The ONNX graph for this model's weights in `cache_dir`, exported first if missing."""
    graph = graph_path(name, folder, cache_dir)
    if not graph.is_file():
        try:
            write_atomically(graph, lambda path: export_graph(folder, path))
        except OSError as error:
            raise EmbeddingError(
                f"Cannot write the embedding model's graph to {cache_dir}: "
                f"{error.strerror or error}.",
                "Set QA_MODEL_CACHE to a folder qa can write to.",
            ) from None
    return graph


def graph_path(name: str, folder: Path, cache_dir: Path) -> Path:
    """Where the graph of these weights is kept: a new weights file gets a new graph."""
    digest = weights_digest(weights_file(folder), cache_dir)
    return cache_dir / f"{Path(name).name}-{digest[:16]}.onnx"


def open_model(graph: Path, folder: Path) -> OnnxModel:
    """An inference session on all cores, with the tokenizer truncating as the model was trained."""
    import onnxruntime
    from tokenizers import Tokenizer

    options = onnxruntime.SessionOptions()
    # One inference at a time: all cores go to the operators inside it.
    options.intra_op_num_threads = usable_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle workers spinning for the next batch would take the cores from Chroma's writes
    # (which overlap embedding during ingest) and from everything else after a query.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = onnxruntime.InferenceSession(
            str(graph), options, providers=["CPUExecutionProvider"]
        )
    except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidProtobuf
        raise EmbeddingError(
            f"Cannot load the ONNX embedding model {graph}: {error}",
            f"Delete it to export it again, or: {FALLBACK_HINT}",
        ) from error
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    # tokenizer.json carries other defaults (here 128, padded to a fixed length); pad per batch.
    tokenizer.enable_truncation(max_length=max_seq_length(folder))
    tokenizer.no_padding()
    input_names = frozenset(node.name for node in session.get_inputs())
    return OnnxModel(session, tokenizer, input_names)


def usable_cores() -> int:
    """Cores this process may run on (a container or taskset can allow fewer than exist)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def max_seq_length(folder: Path) -> int:
    """The token limit sentence-transformers applies to this model (256 for all-MiniLM-L6-v2)."""
    config = folder / "sentence_bert_config.json"
    if not config.is_file():
        raise EmbeddingError(f"{folder} is not a sentence-transformers folder.", FALLBACK_HINT)
    return int(json.loads(config.read_text())["max_seq_length"])


def weights_file(folder: Path) -> Path:
    """The weights the graph is exported from."""
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return folder / name
    raise EmbeddingError(f"No model weights ({', '.join(WEIGHT_FILES)}) in {folder}.")


def weights_digest(weights: Path, cache_dir: Path) -> str:
    """SHA-256 of the weights file, remembered in `cache_dir` while the file is unchanged.

    Hashing 90 MB takes a quarter of a second, which every cold `qa ask` would pay; a
    reinstalled or edited file gets a new inode or change time, so its digest is taken afresh.
    """
    stamp = f"{weights.resolve()}|{'|'.join(map(str, file_stamp(weights)))}"
    memo = cache_dir / f"weights-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.sha256"
    with contextlib.suppress(OSError):
        if memo.is_file():
            return memo.read_text().strip()
    with weights.open("rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()
    # The memo only saves hashing the weights next time: a cache that cannot be written
    # costs that, and nothing else.
    with contextlib.suppress(OSError):
        write_atomically(memo, lambda path: path.write_text(digest))
    return digest


def file_stamp(path: Path) -> tuple[int, ...]:
    """What changes whenever the file's content can have changed."""
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def export_graph(folder: Path, target: Path) -> None:
    """Trace the transformer to ONNX (token vectors out; pooling stays in numpy) and check it."""
    # Any failure here (missing torch or onnx, an exporter change, a full disk) has one remedy.
    try:
        model = trace_to_onnx(folder, target)
        check_graph(model, folder, target)
    except EmbeddingError:
        raise
    except Exception as error:
        raise EmbeddingError(
            f"Cannot export the embedding model {folder} to ONNX: {error}", FALLBACK_HINT
        ) from error


def trace_to_onnx(folder: Path, target: Path):
    """Write the graph with dynamic batch and sequence axes; returns the torch model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    # Eager attention traces to plain MatMul and Softmax, which every ONNX Runtime runs.
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager").eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    names = ["input_ids", "attention_mask", "token_type_ids"]
    # eval() on the wrapper: the exporter puts its training flag back on the model afterwards,
    # and a model left training would answer the check below with dropout on.
    example = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        # Tracer warnings are about code paths this model does not take.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TokenVectors().eval(),
            example,
            str(target),
            input_names=names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,  # the torch.export route needs onnxscript and gains nothing here
        )
    return model


def check_graph(model, folder: Path, graph: Path) -> None:
    """Refuse a graph whose vectors drift from the torch model's on a padded batch."""
    import torch

    texts = ["A short one.", "A longer sentence, so that the batch is padded: " + "news " * 40]
    exported = open_model(graph, folder)
    inputs = batch_inputs(exported.tokenizer.encode_batch(texts))
    with torch.no_grad():
        tensors = {name: torch.from_numpy(array) for name, array in inputs.items()}
        hidden = model(**tensors).last_hidden_state.numpy()
    expected = mean_pool_and_normalise(hidden, inputs["attention_mask"])
    cosine = float((exported.encode(texts) * expected).sum(axis=1).min())
    if cosine < 0.999:
        raise EmbeddingError(
            f"The exported ONNX model disagrees with {folder} (cosine {cosine:.4f}).",
            FALLBACK_HINT,
        )
