"""A typed Python client of the TextNLP API (httpx), sync and async.

    with TextNLPClient("http://127.0.0.1:8000") as client:
        client.login("alice", password)
        print(client.generate(prompt="Hello", max_tokens=16).choices[0].text)
        for piece in client.stream(prompt="Tell me a story", max_tokens=32):
            print(piece, end="")

Access tokens are refreshed before they expire and once more after a 401 (streams and
downloads too; one refresh for requests refused at once); API keys (``api_key=``) need
neither. A request refused for now (429, 503) is sent again after its ``Retry-After``, up to
``max_retries`` times. Errors raise ``ApiError`` with the server's error type, status and
``retry_after``: a wrong argument too (422, before anything is sent), an answer that is not
the API's (502 ``bad_response``), and an API that cannot be reached (``ApiUnreachable``, 503).
"""

from textnlp.client.async_client import AsyncTextNLPClient
from textnlp.client.sync_client import TextNLPClient
from textnlp.errors import ApiError, ApiUnreachable

__all__ = ["ApiError", "ApiUnreachable", "AsyncTextNLPClient", "TextNLPClient"]
