"""A TCP proxy on loopback that a test can cut: the outage of a dependency, on demand.

    with TcpProxy("127.0.0.1", 5432) as proxy:   # the machine's shared PostgreSQL
        url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test"
        ...
        proxy.cut()       # every open connection is reset, new ones are refused
        proxy.restore()   # the same port accepts and forwards again

Taking a shared service away for one test is not an option (other suites and engineers use
it); cutting the path to it is the same outage for the client, and it is over the moment the
test says so. ``cut`` resets connections (SO_LINGER 0), as a server that crashed or a network
that dropped them would, rather than closing them politely.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

from tests.conftest import free_port

_BUFFER = 1 << 16


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.cuts = 0
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            _close(listener)
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)
        self.cuts += 1

    def restore(self) -> None:
        if self._listener is None:
            self.start()

    def close(self) -> None:
        self.cut()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by cut()
                return
            if self._listener is not listener:
                _reset(client)
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(_BUFFER):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)
            _close(source)
            _close(sink)


def _reset(sock: socket.socket) -> None:
    """Close with a RST: the peer sees "connection reset", not an orderly end."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)  # wakes the pump blocked in recv, sends nothing
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sock.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
