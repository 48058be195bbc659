"""A small TCP proxy between a tracked run and its server, for outages a test controls: `down()`
refuses every connection (and drops the open ones) until `up()`; `cut_after(n)` drops the
connection carrying the next `n` bytes from the client mid-request. It notes the
`Upload-Offset` of each upload piece that passes."""

from __future__ import annotations

import contextlib
import re
import socket
import threading

OFFSET_HEADER = re.compile(rb"\r\nUpload-Offset: (\d+)\r\n", re.IGNORECASE)


class Proxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.offsets: list[int] = []
        """`Upload-Offset` of every upload piece that went through, in order."""
        self._up = True
        self._cut_left: int | None = None
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def up(self) -> None:
        self._up = True

    def down(self) -> None:
        self._up = False
        self._drop_all()

    def cut_after(self, client_bytes: int) -> None:
        """Drop the connection that carries the next `client_bytes` from a client."""
        with self._lock:
            self._cut_left = client_bytes

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self._drop_all()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)

    def _drop_all(self) -> None:
        with self._lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up:
                client.close()
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for source, target, upstream in ((client, server, True), (server, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(source, target, upstream), daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _pump(self, source: socket.socket, target: socket.socket, upstream: bool) -> None:
        tail = b""
        try:
            while data := source.recv(65536):
                if upstream:
                    window = tail + data
                    end = 0
                    for match in OFFSET_HEADER.finditer(window):
                        self.offsets.append(int(match.group(1)))
                        end = match.end()
                    tail = window[max(end, len(window) - 64) :]
                    if self._cut(len(data)):
                        break
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with self._lock:
                self._open.difference_update((source, target))

    def _cut(self, size: int) -> bool:
        """Whether these `size` bytes end the armed budget (the connection is then dropped)."""
        with self._lock:
            if self._cut_left is None:
                return False
            self._cut_left -= size
            if self._cut_left > 0:
                return False
            self._cut_left = None
            return True
