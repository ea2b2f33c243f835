"""Loaded backends, one per model id, shared by everything in a process."""

from __future__ import annotations

import asyncio

from textnlp.backends.base import Backend
from textnlp.backends.registry import ModelCatalogue
from textnlp.domain import ModelInfo
from textnlp.errors import BackendUnavailable


class ModelPool:
    """Loads a model the first time it is asked for and keeps it until ``aclose``."""

    def __init__(self, catalogue: ModelCatalogue) -> None:
        self.catalogue = catalogue
        self._backends: dict[str, Backend] = {}
        self._lock = asyncio.Lock()

    async def get(self, model_id: str) -> Backend:
        backend = self._backends.get(model_id)
        if backend is not None:
            return backend
        async with self._lock:
            if model_id not in self._backends:
                info = self.catalogue.describe(model_id)
                if not info.available:
                    raise BackendUnavailable(
                        f"model {model_id} is not available here: {info.reason}",
                        backend=info.backend,
                        model=model_id,
                    )
                backend = self.catalogue.create(model_id)
                await backend.load()
                self._backends[model_id] = backend
            return self._backends[model_id]

    def loaded(self) -> list[str]:
        return list(self._backends)

    def describe_all(self) -> list[ModelInfo]:
        return [self.catalogue.describe(model_id) for model_id in self.catalogue.ids()]

    async def aclose(self) -> None:
        backends, self._backends = self._backends, {}
        for backend in backends.values():
            await backend.aclose()
