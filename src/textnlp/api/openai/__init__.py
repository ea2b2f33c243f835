"""The OpenAI-compatible surface under ``/v1``, over the same services as the native API.

``GET /v1/models`` (+ ``/{model_id}``), ``POST /v1/completions``, ``POST /v1/chat/completions``,
``POST /v1/embeddings``. Authentication, rate limits (with OpenAI's ``x-ratelimit-*``
headers: ``ratelimit``), the owner-scoped response cache, spending caps and metrics are the
native routes' (``CompletionsServing``); errors are OpenAI's error object with OpenAI's
status codes (``api.errors``, the one place errors are rendered). One module per job:
``schemas`` (bodies; unknown fields ignored), ``translate`` (requests and answers),
``structured`` (``response_format``), ``streaming`` (SSE), ``embedder``, a router per route
(``chat``, ``completions``, ``embeddings``, ``models``); ``routes.install_openai`` adds them.
"""
