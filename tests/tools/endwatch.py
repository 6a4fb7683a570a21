#!/usr/bin/env python3
"""A backend that echoes and records how each connection ended: one line
"fin BYTES" (the peer closed cleanly) or "rst BYTES" (it was reset) per
connection, appended to LOG.

usage: endwatch.py PORTFILE LOG
"""
import socket
import sys
import threading


def serve(conn, log):
    n, how = 0, "fin"
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            n += len(data)
            conn.sendall(data)
    except (ConnectionResetError, BrokenPipeError):
        how = "rst"
    finally:
        conn.close()
    with open(log, "a") as f:
        f.write("%s %d\n" % (how, n))


def main():
    portfile, log = sys.argv[1], sys.argv[2]
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    import os
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = ls.accept()
        threading.Thread(target=serve, args=(conn, log), daemon=True).start()


if __name__ == "__main__":
    main()
