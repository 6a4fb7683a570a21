#!/usr/bin/env python3
"""A backend for the integration tests that reads the PROXY v2 header the
gateway sends, logs what it says about the client's certificate (one line
per connection), and answers one HTTP request with the same facts, so the
client can see what the backend saw.

    pp2_http.py PORT-FILE LOG-FILE

Log line: pp2 tls=yes|no cert=yes|no verify=N cn=NAME version=VERSION
The SSL TLV (RFC-style PROXY v2, type 0x20): byte 0 the client flags
(0x01 SSL, 0x02 certificate on this connection), bytes 1-4 the verify
result (0 = a certificate was presented and verified), then sub-TLVs
(0x21 version, 0x22 CN).
"""
import os
import socket
import sys
import threading

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            raise EOFError("short PROXY header")
        buf += chunk
    return buf


def tlvs(data):
    off = 0
    while off + 3 <= len(data):
        t = data[off]
        ln = int.from_bytes(data[off + 1:off + 3], "big")
        yield t, data[off + 3:off + 3 + ln]
        off += 3 + ln


def parse(conn):
    head = read_exact(conn, 16)
    if head[:12] != SIG or head[12] != 0x21:
        raise ValueError("not a PROXY v2 header")
    body = read_exact(conn, int.from_bytes(head[14:16], "big"))
    alen = {0x11: 12, 0x21: 36}.get(head[13], 0)
    facts = {"tls": "no", "cert": "no", "verify": "-", "cn": "-", "version": "-"}
    for t, v in tlvs(body[alen:]):
        if t != 0x20 or len(v) < 5:
            continue
        facts["tls"] = "yes" if v[0] & 0x01 else "no"
        facts["cert"] = "yes" if v[0] & 0x02 else "no"
        facts["verify"] = str(int.from_bytes(v[1:5], "big"))
        for st, sv in tlvs(v[5:]):
            if st == 0x21:
                facts["version"] = sv.decode("ascii", "replace")
            elif st == 0x22:
                facts["cn"] = sv.decode("utf-8", "replace")
    return facts


def serve(conn, log, lock):
    try:
        facts = parse(conn)
        line = "pp2 " + " ".join(f"{k}={facts[k]}" for k in
                                 ("tls", "cert", "verify", "cn", "version"))
        with lock:
            log.write(line + "\n")
            log.flush()
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = conn.recv(4096)
            if not chunk:
                break
            req += chunk
        body = (line + "\n").encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                     b"Connection: close\r\nContent-Length: " +
                     str(len(body)).encode() + b"\r\n\r\n" + body)
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(4096):
            pass
    except (OSError, EOFError, ValueError) as e:
        with lock:
            log.write(f"error {e}\n")
            log.flush()
    finally:
        conn.close()


def main():
    port_file, log_file = sys.argv[1], sys.argv[2]
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    lock = threading.Lock()
    with open(log_file, "a") as log:
        with open(port_file + ".tmp", "w") as f:
            f.write(str(lsock.getsockname()[1]))
        # the port file appears whole
        os.rename(port_file + ".tmp", port_file)
        while True:
            conn, _ = lsock.accept()
            threading.Thread(target=serve, args=(conn, log, lock), daemon=True).start()


if __name__ == "__main__":
    main()
