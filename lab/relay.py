"""A TCP relay in its own process: ``python -m lab.relay HOST PORT TARGET_HOST TARGET_PORT``.

Lets Argo CD reach the workload cluster's loopback API at another address (see harness.py). A
process of its own, with plain threads: the test process runs under gevent's monkey patching.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


class Relay:
    """Forward TCP connections from ``listen`` to ``target`` (both host, port), in threads."""

    def __init__(self, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(listen)
        self.server.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = self.server.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(None)
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.server.close()


def main() -> None:
    host, port, target_host, target_port = sys.argv[1:5]
    relay = Relay((host, int(port)), (target_host, int(target_port)))
    print("listening", flush=True)
    relay.thread.join()


if __name__ == "__main__":
    main()
