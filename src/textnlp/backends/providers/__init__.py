"""Pure translation between TextNLP requests and each provider's request/response bodies.

Nothing here does I/O or imports a client library: every function turns a ``GenerationRequest``
into a JSON-ready ``dict`` or a provider's decoded JSON into a ``Parsed`` result or ``Chunk``, so
that it can be tested on bodies copied from the providers' documentation. The backends
(``bedrock.py``, ``sagemaker.py``, ``openai_compat.py``, ``anthropic_api.py``) do the transport.
"""
