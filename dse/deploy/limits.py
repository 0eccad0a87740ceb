"""The bounds ``dse serve`` keeps by default, apart from the server so that the command
line can show them without importing torch."""

from __future__ import annotations

MAX_PAYLOAD = 64 * 1024 * 1024  # bytes: a request announcing more gets status 3
MAX_CONNECTIONS = 16  # connections served at once; one more gets status 5
MAX_BUFFERED = 256 * 1024 * 1024  # payload bytes held at once over all connections
IDLE_TIMEOUT_S = 60.0  # a connection silent this long between requests gets status 6
FRAME_TIMEOUT_S = 30.0  # a frame's arrival, beyond its payload at MIN_RATE; a reply's taking
MIN_RATE = 125_000  # bytes/s (1 Mbit/s): the slowest a payload may arrive
BACKLOG = 128  # connections the kernel queues before they are accepted
