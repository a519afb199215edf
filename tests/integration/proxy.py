"""A TCP proxy in front of RabbitMQ that a test can cut and restore, to stand for a broker outage.

Cutting it closes every open connection and refuses new ones, which is what a
client sees when the broker host goes away, without stopping the shared broker.
"""
import socket

import eventlet


class CuttableProxy:
    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = eventlet.listen(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = True
        self.sockets = set()
        self.server = eventlet.spawn(self._serve)

    def _serve(self):
        while True:
            client, _ = self.listener.accept()
            if not self.up:
                client.close()
                continue
            try:
                upstream = eventlet.connect(self.target)
            except OSError:
                client.close()
                continue
            self.sockets |= {client, upstream}
            eventlet.spawn(self._pipe, client, upstream)
            eventlet.spawn(self._pipe, upstream, client)

    def _pipe(self, src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except (OSError, EOFError):  # EOFError: eventlet's IOClosed when the other side was closed under us
            pass
        finally:
            # Shut both down, which wakes the greenthread reading the other direction with EOF, but
            # close only our own source: closing a socket another greenthread is reading leaks an
            # eventlet listener on its fd, and the next socket to reuse the number fails with
            # "Second simultaneous read".
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.sockets.discard(src)
            src.close()

    def cut(self):
        self.up = False
        for s in list(self.sockets):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def restore(self):
        self.up = True

    def close(self):
        self.cut()
        self.server.kill()
        self.listener.close()
