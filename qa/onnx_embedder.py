"""The local sentence-transformers model run by ONNX Runtime: qa needs no torch to embed.

The graph is written once from the model's own weights (`qa.onnx_graph`, in about two seconds) and
cached in the data directory; tokenizing, mean pooling and normalising repeat what
sentence-transformers does, so the vectors match it and collections built with either backend
stay compatible.
"""

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.atomic_files import write_atomically
from qa.bert_reference import reference_token_vectors
from qa.bundled_model import bundled_model_path
from qa.errors import EmbeddingError
from qa.onnx_graph import BertShape, bert_shape, build_graph, load_weights

# Texts per inference. Small batches are faster here, not slower: on 1,259 news chunks
# (2 cores), 4 took 28 s and peaked at 271 MB, 8 took 31 s / 320 MB, 32 took 39 s / 617 MB;
# a batch's attention tensors grow with its size and stop fitting in cache.
BATCH_SIZE = 4
# safetensors only: reading pytorch_model.bin (a pickle) would take torch.
WEIGHT_FILES = ("model.safetensors",)
# Part of the cached graph's name, so a graph written another way is never mistaken for this
# one: 1 was torch.onnx.export's graph, 2 is the one qa.onnx_graph writes.
GRAPH_FORMAT = 2
# Questions whose vectors are kept: a chat session asks few, an eval run one at a time.
RECENT_QUERIES = 32
FALLBACK_HINT = (
    'Set QA_EMBEDDING_BACKEND=torch (pip install "qa-news[torch]") to embed with '
    "sentence-transformers instead."
)


class OnnxEmbedder:
    """A sentence-transformers folder run by ONNX Runtime; exported once into `cache_dir`."""

    def __init__(self, name: str, cache_dir: Path, keep_files: bool = True) -> None:
        self.name = name
        self.cache_dir = cache_dir
        # Without: a graph not cached yet is built in memory, and nothing is written (asking
        # never writes qa's derived files).
        self.keep_files = keep_files
        self._recent_queries: dict[str, list[float]] = {}
        self._loading: Future | None = None

    def embed_documents(
        self, texts: Sequence[str], progress: Callable[[int], None] | None = None
    ) -> list[list[float]]:
        loading = self._loading
        if loading is not None:
            try:
                loading.result()
            except BaseException:
                # Loaded again below, where its failure is the caller's to see.
                self._loading = None
        model = load_onnx_model(self.name, self.cache_dir, self.keep_files)
        return model.encode(texts, progress).tolist()

    def warm_up(self) -> None:
        """Start loading the model in a thread of its own if its graph was exported already
        (a first export waits until something is really embedded); ONNX Runtime loads it
        outside the interpreter lock, and the first text embedded waits for it."""
        if self._loading is not None or not self.cache_dir.is_dir():
            # Nothing exported here yet, and a warm-up creates no folder.
            return
        folder = bundled_model_path(self.name)
        if graph_path(self.name, folder, self.cache_dir, self.keep_files).is_file():
            pool = ThreadPoolExecutor(max_workers=1)
            self._loading = pool.submit(load_onnx_model, self.name, self.cache_dir, self.keep_files)
            pool.shutdown(wait=False)

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


def load_onnx_model(name: str, cache_dir: Path, keep_files: bool = True) -> OnnxModel:
    """The model, from the cached graph; the first use builds the graph, and with `keep_files`
    caches it."""
    folder = bundled_model_path(name)
    weights = weights_file(folder)
    key = (str(weights.resolve()), file_stamp(weights))
    if key not in _loaded:
        graph = graph_path(name, folder, cache_dir, keep_files)
        if graph.is_file():
            _loaded[key] = open_model(graph, folder)
        else:
            _loaded[key] = write_graph(folder, graph) if keep_files else graph_in_memory(folder)
    return _loaded[key]


def cached_graph(name: str, folder: Path, cache_dir: Path) -> Path:
    """The ONNX graph for this model's weights in `cache_dir`, exported first if missing."""
    graph = graph_path(name, folder, cache_dir)
    if not graph.is_file():
        write_graph(folder, graph)
    return graph


def write_graph(folder: Path, graph: Path) -> OnnxModel:
    """Export the graph to `graph`, whole or not at all; returns the model the check opened."""
    checked: list[OnnxModel] = []
    try:
        write_atomically(graph, lambda path: checked.append(export_graph(folder, path)))
    except OSError as error:
        raise EmbeddingError(
            f"Cannot write the embedding model's graph to {graph.parent}: "
            f"{error.strerror or error}.",
            "Set QA_MODEL_CACHE to a folder qa can write to.",
        ) from None
    return checked[0]


def graph_path(name: str, folder: Path, cache_dir: Path, keep_files: bool = True) -> Path:
    """Where the graph of these weights is kept: new weights, or a graph written another way,
    get a new file."""
    digest = weights_digest(weights_file(folder), cache_dir, keep_files)
    return cache_dir / f"{Path(name).name}-{digest[:16]}-graph{GRAPH_FORMAT}.onnx"


def open_model(graph: Path | bytes, folder: Path) -> OnnxModel:
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
            graph if isinstance(graph, bytes) else str(graph),
            options,
            providers=["CPUExecutionProvider"],
        )
    except Exception as error:  # onnxruntime raises its own untyped Fail/InvalidProtobuf
        raise EmbeddingError(
            f"Cannot load the ONNX embedding model {'built' if isinstance(graph, bytes) else graph}"
            f": {error}",
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


def weights_digest(weights: Path, cache_dir: Path, remember: bool = True) -> str:
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
    if remember:
        with contextlib.suppress(OSError):
            write_atomically(memo, lambda path: path.write_text(digest))
    return digest


def file_stamp(path: Path) -> tuple[int, ...]:
    """What changes whenever the file's content can have changed."""
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def export_graph(folder: Path, target: Path) -> OnnxModel:
    """Write the transformer's graph from its weights (token vectors out; pooling stays in
    numpy) and check it against a plain numpy reading of the same weights."""
    return built_graph(folder, target)


def graph_in_memory(folder: Path) -> OnnxModel:
    """The model from a graph built in memory and checked as an export is, written nowhere."""
    return built_graph(folder, None)


def built_graph(folder: Path, target: Path | None) -> OnnxModel:
    """The graph built and checked, and written to `target` unless None."""
    # Any failure here (weights of another shape, a full disk, an ONNX Runtime that refuses
    # the graph) has one remedy.
    try:
        shape = bert_shape(folder)
        weights = load_weights(weights_file(folder))
        graph = build_graph(weights, shape).SerializeToString()
        if target is None:
            return check_graph(weights, shape, folder, graph)
        target.write_bytes(graph)
        return check_graph(weights, shape, folder, target)
    except EmbeddingError as error:
        raise EmbeddingError(error.message, error.hint or FALLBACK_HINT) from error
    except Exception as error:
        raise EmbeddingError(
            f"Cannot export the embedding model {folder} to ONNX: {error}", FALLBACK_HINT
        ) from error


def check_graph(
    weights: dict[str, np.ndarray], shape: BertShape, folder: Path, graph: Path | bytes
) -> OnnxModel:
    """The graph's model, refused if its vectors on a padded batch drift from the reference's."""
    # Short texts: the reference costs milliseconds a token, more on a busy machine.
    texts = ["A short one.", "A longer sentence, so that the batch is padded with zeros."]
    exported = open_model(graph, folder)
    expected = np.stack(
        [
            reference_token_vectors(weights, shape, encoding.ids, encoding.type_ids).mean(axis=0)
            for encoding in exported.tokenizer.encode_batch(texts)
        ]
    )
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    cosine = float((exported.encode(texts) * expected).sum(axis=1).min())
    if cosine < 0.999:
        raise EmbeddingError(
            f"The exported ONNX model disagrees with {folder} (cosine {cosine:.4f}).",
            FALLBACK_HINT,
        )
    return exported
