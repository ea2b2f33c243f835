"""A typed Python client of the TextNLP API (httpx), sync and async.

    with TextNLPClient("http://127.0.0.1:8000") as client:
        client.login("alice", password)
        print(client.generate(prompt="Hello", max_tokens=16).choices[0].text)
        for piece in client.stream(prompt="Tell me a story", max_tokens=32):
            print(piece, end="")

Access tokens are refreshed before they expire and once more after a 401; API keys
(``api_key=``) need neither. Errors raise ``ApiError`` with the server's error type.
"""

from textnlp.client.async_client import AsyncTextNLPClient
from textnlp.client.core import ApiError
from textnlp.client.sync_client import TextNLPClient

__all__ = ["ApiError", "AsyncTextNLPClient", "TextNLPClient"]
