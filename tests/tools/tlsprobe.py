#!/usr/bin/env python3
"""A TLS client that owns its TCP socket, for what ordinary clients cannot do:
end the stream without close_notify, forge a record, and report exactly how
the peer ended the connection.

usage: tlsprobe.py MODE PORT CAFILE CERT KEY
  MODE  clean      send "ping\\n", read the echo, close_notify, read to the end
        truncate   send "ping\\n", read the echo, FIN without close_notify
        badrecord  send "ping\\n", read the echo, then a record that cannot decrypt
        hold       send "ping\\n", read the echo, then echo stdin lines until EOF
Prints one line of key=value: echo (what came back), alert (TLS alerts the
peer sent, as numbers), end (fin: a clean TCP close, rst: a reset, open:
nothing within the timeout).
"""
import os
import socket
import ssl
import sys

TIMEOUT = 20.0


class Probe:
    def __init__(self, port, ca, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(ca)
        ctx.load_cert_chain(cert, key)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_hostname="localhost")
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.alerts = []
        self.end = None
        self._handshake()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _feed(self):
        """One read from the socket into the TLS engine; False at the end."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.end = "rst"
            return False
        except socket.timeout:
            self.end = "open"
            return False
        if not data:
            self.end = "fin"
            return False
        self._note_alerts(data)
        self.inc.write(data)
        return True

    def _note_alerts(self, data):
        # Alerts after the handshake are encrypted (TLS 1.3); plaintext
        # alert records (type 21) are recorded as they pass.
        i = 0
        while i + 5 <= len(data):
            rtype, rlen = data[i], int.from_bytes(data[i + 3:i + 5], "big")
            if rtype == 21 and i + 7 <= len(data):
                self.alerts.append(data[i + 6])
            i += 5 + rlen

    def _handshake(self):
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                if not self._feed():
                    raise SystemExit("end=%s during the handshake" % self.end)

    def send(self, data):
        self.tls.write(data)
        self._flush()

    def recv_line(self):
        buf = b""
        while not buf.endswith(b"\n"):
            try:
                buf += self.tls.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                self.alerts.append(str(e.reason))
                break
            if not self._feed():
                break
        return buf

    def read_to_end(self):
        """Read until the TCP stream ends, noting alerts on the way."""
        while self.end is None:
            try:
                self.tls.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLZeroReturnError:
                self.alerts.append("close_notify")
            except ssl.SSLError as e:
                self.alerts.append(str(e.reason))
            self._feed()


def main():
    mode, port, ca, cert, key = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
    p = Probe(port, ca, cert, key)
    p.send(b"ping\n")
    echo = p.recv_line().decode(errors="replace").strip()
    if mode == "clean":
        try:
            p.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        p._flush()
    elif mode == "truncate":
        p.sock.shutdown(socket.SHUT_WR)
    elif mode == "badrecord":
        # application_data, TLS 1.2 legacy version, 32 bytes nobody encrypted
        p.sock.sendall(bytes([23, 3, 3, 0, 32]) + os.urandom(32))
    elif mode == "hold":
        for line in sys.stdin:
            p.send(line.encode())
            p.recv_line()
        p.sock.shutdown(socket.SHUT_WR)
    p.read_to_end()
    alerts = ",".join(str(a) for a in p.alerts) or "-"
    print("echo=%s alert=%s end=%s" % (echo or "-", alerts, p.end))


if __name__ == "__main__":
    main()
