#!/usr/bin/env python3
"""Hold N connections to HOST:PORT and drip one byte of an HTTP request on
each every INTERVAL seconds, until killed: the slowest possible clients.

usage: slowclients.py PORT N INTERVAL READYFILE
Writes READYFILE once all N are connected.
"""
import socket
import sys
import time

port, n, interval, ready = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
open(ready, "w").write("%d\n" % n)
i = 0
while True:
    for s in socks:
        try:
            s.send(req[i % (len(req) - 4):][:1])
        except OSError:
            pass
    i += 1
    time.sleep(interval)
