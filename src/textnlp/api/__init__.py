"""The HTTP API: ``create_app(settings)`` in ``textnlp.api.app``.

Nothing is imported here so that ``textnlp.api.schemas`` (used by the client) does not pull
FastAPI in.
"""
