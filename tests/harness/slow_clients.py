"""Slow and idle HTTP clients, and the server's end of a connection: the checks of the
kernel's HTTP server (``shared.http.WebServer`` and ``Protocol``), run against a service
(tests/e2e/kernel/test_request_path.py) and the console
(services/console/tests/e2e/test_console_slow_clients.py), both in containers in the test
process with ``QINGLIAN_HTTP_TIMEOUT`` at 2 s."""
from __future__ import annotations

import os
import select  # eventlet's too
import socket  # eventlet's, under the root conftest's monkey-patch
import time

import eventlet
from eventlet.patcher import original

plain = original("socket")  # for the server's fds, read as they are


def trickle_headers(address, path: str, connections: int = 30, seconds: int = 8,
                    meanwhile=lambda: None) -> list[str]:
    """``connections`` clients each send half a request (``POST path``, part of a header)
    and then one byte a second for ``seconds`` s - never idle long enough for the socket
    timeout. Returns each one's outcome: "closed" (the server cut it off) or "open";
    ``meanwhile()`` runs while they trickle."""
    def trickle(s):
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nX-Slow: " % path.encode())
        for _ in range(seconds):
            time.sleep(1)
            try:
                s.sendall(b"x")
            except OSError:  # reset: the server closed it
                return "closed"
        return "open"
    return _each_connection(address, connections, trickle, meanwhile)


def trickle_body(address, head: bytes, body: bytes, connections: int = 10, seconds: int = 8,
                 meanwhile=lambda: None) -> list[bytes]:
    """``connections`` clients each send ``head`` (a request's line and headers, with a
    ``Content-Length`` of ``len(body)``) at once and then ``body`` one byte a second for
    up to ``seconds`` s (fewer than it has: it never ends) - never idle long enough for the
    socket timeout. Returns what each got back: the server's answer, all of it up to the
    close (b"" if it closed without one). ``meanwhile()`` runs while they trickle."""
    assert len(body) > seconds, "the body must outlast the trickle"

    def trickle(s):
        s.sendall(head)
        for byte in body[:seconds]:
            time.sleep(1)
            if select.select([s], [], [], 0)[0]:  # answered (or closed): stop sending
                break
            try:
                s.sendall(bytes([byte]))
            except OSError:  # reset: the server closed it
                break
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except OSError:  # a reset after the answer
            pass
        return answer
    return _each_connection(address, connections, trickle, meanwhile)


def _each_connection(address, connections: int, client, meanwhile) -> list:
    """``client(socket)`` on ``connections`` connections at once, ``meanwhile()`` while they
    run: what each returned. The connections are closed after."""
    slow = [socket.create_connection(address, timeout=30) for _ in range(connections)]
    try:
        outcomes = eventlet.GreenPool(connections).imap(client, slow)
        meanwhile()
        return list(outcomes)
    finally:
        for s in slow:
            s.close()


def _read_response(s) -> bytes:
    """One whole response (its head and a ``Content-Length`` body); returns the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, "the server closed before it answered: %r" % data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "the server closed inside the body"
        body += chunk
    return head


def keep_alive_get(address, path: str):
    """A connection that has had one keep-alive ``GET path`` answered (read to its end):
    (the socket, the response head)."""
    s = socket.create_connection(address, timeout=30)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n" % path.encode())
    return s, _read_response(s)


def sent_after_idling(s) -> bytes:
    """What the server sends on a connection left idle: b"" once it closes it (the client
    waits up to its own 30 s timeout, which raises)."""
    return s.recv(1)


def server_end(client):
    """This process's socket at the other end of ``client`` (the server runs in the test
    process): a duplicate of the fd whose peer is the client's address. Close it after."""
    mine = client.getsockname()
    for name in os.listdir("/proc/self/fd"):
        try:
            s = plain.fromfd(int(name), plain.AF_INET, plain.SOCK_STREAM)
        except OSError:
            continue
        try:
            if s.getpeername() == mine:
                return s
        except OSError:  # a listening or unconnected socket has no peer: not this one
            pass
        s.close()
    raise AssertionError("no socket of this process is connected to %s:%d" % mine)


def no_delay(client) -> bool:
    """Whether the server's end of ``client`` has TCP_NODELAY (Nagle's algorithm off)."""
    s = server_end(client)
    try:
        return s.getsockopt(plain.IPPROTO_TCP, plain.TCP_NODELAY) != 0
    finally:
        s.close()
