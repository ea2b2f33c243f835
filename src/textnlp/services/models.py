"""Loaded backends, one per model id, shared by everything in a process."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from textnlp.backends.base import Backend
from textnlp.backends.pricing import PricedBackend, PriceTable
from textnlp.backends.registry import ModelCatalogue, backend_class
from textnlp.config import EngineSettings
from textnlp.domain import ModelInfo
from textnlp.errors import ModelUnavailable

if TYPE_CHECKING:
    from textnlp.adapters.secrets import SecretsProvider
    from textnlp.backends.cloud import CloudContext
    from textnlp.backends.kv_store import PrefixStoreConfig
    from textnlp.backends.resilience import CircuitState
    from textnlp.services.kept_models import KeptModels

#: How long a finding of a backend's ambient credentials (found or not) is trusted.
CREDENTIALS_TTL_S = 60.0


def engine_options(engine: EngineSettings, given: Mapping[str, Any]) -> dict[str, Any]:
    """A llama.cpp model's options from the ``engine`` settings: the catalogue entry's own
    ``given`` options win, so a model tuned in ``models.yaml`` keeps its slots and threads."""
    defaults = {"n_parallel": engine.n_parallel, "n_threads": engine.n_threads}
    defaults["n_batch"] = engine.n_batch
    unset = {name: value for name, value in defaults.items() if name not in given}
    return {"llama_logs": engine.llama_logs, **unset}


class ModelPool:
    """Loads a model the first time it is asked for and keeps it until ``aclose``.

    Remote backends share one ``CloudContext`` (secrets, circuits, rate limits, prices), made by
    ``cloud_context`` (the composition root's) the first time one is needed, and closed here.
    Local engines that keep prompts' KV on disk are given ``prefix_store`` (None: they don't),
    and llama.cpp engines the ``engine`` settings: ``llama_logs``, and ``n_parallel``,
    ``n_threads`` and ``n_batch`` where the model's catalogue entry leaves them unset.
    A local model with an entry in ``prices`` is wrapped so that its completions carry a cost.
    Given ``kept`` (the library's), engines that can be shared are checked out of it and given
    back at ``aclose``, so that the process loads each once (``services.kept_models``).
    """

    def __init__(
        self,
        catalogue: ModelCatalogue,
        cloud_context: Callable[[], CloudContext],
        prefix_store: PrefixStoreConfig | None = None,
        secrets: Callable[[], SecretsProvider] | None = None,
        prices: PriceTable | None = None,
        engine: EngineSettings | None = None,
        kept: KeptModels | None = None,
    ) -> None:
        self.catalogue = catalogue
        self._prices = prices
        self._make_cloud = cloud_context
        self._prefix_store = prefix_store
        self._engine = engine or EngineSettings()
        #: Where a remote model's API key is looked up: a model without one is unavailable.
        self._secrets = secrets
        self._backends: dict[str, Backend] = {}
        #: The library's engines kept between its calls (None: this pool loads and closes its
        #: own), and those this pool checked out of them, by model id.
        self._kept = kept
        self._checked_out: dict[str, Backend] = {}
        self._cloud: CloudContext | None = None
        self._lock = asyncio.Lock()
        #: Per backend name, when its ambient credentials were looked for and what was missing.
        self._credentials_checked: dict[str, tuple[float, str | None]] = {}

    async def get(self, model_id: str) -> Backend:
        backend = self._backends.get(model_id)
        if backend is not None:
            return backend
        async with self._lock:
            if model_id not in self._backends:
                await asyncio.to_thread(self.check_available, model_id)
                spec = self.catalogue.get(model_id)
                options: dict[str, Any] = {}
                cls = backend_class(spec.backend)
                remote = getattr(cls, "shares_cloud_context", False)
                if remote:
                    options["context"] = self._cloud_context()
                if self._prefix_store and getattr(cls, "uses_prefix_store", False):
                    options["prefix_store"] = self._prefix_store
                if getattr(cls, "uses_engine_settings", False):
                    options.update(engine_options(self._engine, spec.options))
                if self._kept is not None and getattr(cls, "shares_loaded_engine", False):
                    key = f"{model_id}\n{spec.model_dump_json()}\n{sorted(options.items())!r}"
                    make = functools.partial(self.catalogue.create, model_id, **options)
                    # A model file written over since it was loaded is loaded again.
                    identity = getattr(cls, "file_identity", None)
                    version = identity(spec) if callable(identity) else ""
                    backend = await asyncio.to_thread(self._kept.checkout, key, make, version)
                    self._checked_out[model_id] = backend
                else:
                    backend = self.catalogue.create(model_id, **options)
                if not remote and self._prices and self._prices.price(spec):
                    backend = PricedBackend(backend, self._prices)
                await backend.load()
                self._backends[model_id] = backend
            return self._backends[model_id]

    def check_available(self, model_id: str) -> None:
        """``ModelUnavailable`` when the model cannot run in this deployment (its backend's
        extra, its API key or its credentials are missing); an open circuit is not looked at
        (it closes again): a job submitted now runs later."""
        info = self._with_credentials(model_id, self.catalogue.describe(model_id))
        if not info.available:
            raise ModelUnavailable(
                f"model {model_id} is not available here: {info.reason}",
                parameter="model",
                model=model_id,
            )

    def _with_credentials(self, model_id: str, info: ModelInfo) -> ModelInfo:
        """``info``, unavailable when the model's backend needs an API key that is not set or
        credentials that are not found (else it would be listed as available and fail each
        call with a server error)."""
        if not info.available:
            return info
        spec = self.catalogue.get(model_id)
        cls = backend_class(spec.backend)
        missing = self._credentials_missing(cls)
        if missing is not None:
            return info.model_copy(update={"available": False, "reason": missing})
        name = cls.key_secret(spec)
        if name is None or self._secrets is None:
            return info
        try:
            found = self._secrets().find(name)
        except Exception:  # the store cannot answer now: the call itself will say why
            return info
        if found is not None:
            return info
        return info.model_copy(
            update={"available": False, "reason": f"its API key (secret {name!r}) is not set"}
        )

    def _credentials_missing(self, cls: type[Backend]) -> str | None:
        """``cls.credentials_missing()``, asked again after ``CREDENTIALS_TTL_S``: finding
        an instance role may wait on a metadata service, and credentials can appear later
        (``aws sso login``)."""
        now = time.monotonic()
        checked = self._credentials_checked.get(cls.name)
        if checked is None or now - checked[0] > CREDENTIALS_TTL_S:
            checked = (now, cls.credentials_missing())
            self._credentials_checked[cls.name] = checked
        return checked[1]

    def _cloud_context(self) -> CloudContext:
        if self._cloud is None:
            self._cloud = self._make_cloud()
        return self._cloud

    def circuit(self, model_id: str) -> CircuitState | None:
        """The circuit of the model's remote backend (None: a local model, or none called)."""
        if self._cloud is None:
            return None
        for name, state in self._cloud.circuits.states().items():
            if name.endswith(f":{model_id}"):  # breakers are named "<backend>:<model id>"
                return state
        return None

    def loaded(self) -> list[str]:
        return list(self._backends)

    def describe(self, model_id: str) -> ModelInfo:
        """The catalogue's description (``ModelNotFound`` for an unknown id), as this process
        sees it now: a model whose circuit is open is unavailable until its next try."""
        info = self._with_credentials(model_id, self.catalogue.describe(model_id))
        state = self.circuit(model_id)
        if state is None or state.state == "closed":
            return info
        reason = (
            f"circuit {state.state.replace('_', '-')} after {state.consecutive_failures} "
            f"failures (last: {state.last_error}); next try in {state.retry_in_s:.0f}s"
        )
        return info.model_copy(
            update={"available": info.available and state.state == "half_open", "reason": reason}
        )

    def describe_all(self) -> list[ModelInfo]:
        return [self.describe(model_id) for model_id in self.catalogue.ids()]

    async def aclose(self) -> None:
        backends, self._backends = self._backends, {}
        checked_out, self._checked_out = self._checked_out, {}
        for model_id, backend in backends.items():
            if model_id not in checked_out:
                await backend.aclose()
        for backend in checked_out.values():  # kept for the next call, not closed
            if self._kept is not None:
                await asyncio.to_thread(self._kept.release, backend)
        self._cloud = None  # its buckets belong to the platform
