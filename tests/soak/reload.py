#!/usr/bin/env python3
"""SIGHUP soak: N reloads while clients handshake and stream, then check that
memory stayed flat and every reload took effect.

usage: reload.py KTLSGW BUILD_DIR RELOADS [--rss-slack-kib K]
Exit 0 when every reload was applied, no client failed for a reason other
than the load, and RSS after the last reload is within the slack of RSS
after the first tenth (allocator warm-up). Prints one summary line.
Under ThreadSanitizer (TSAN_OPTIONS set by the caller) the gateway's exit
status carries its verdict.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Log:
    """Follows a log file from where it was: only new lines are read."""

    def __init__(self, path):
        self.f = open(path, "r", errors="replace")

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout
        buf = ""
        while time.monotonic() < deadline:
            chunk = self.f.read()
            if chunk:
                buf += chunk
                if needle in buf:
                    return True
                buf = buf[-len(needle):]
            else:
                time.sleep(0.005)
        return False


def main():
    gw_bin, build, reloads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    slack = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--rss-slack-kib" else 1536
    t = tempfile.mkdtemp(prefix="kg-reload.")
    pki = os.path.join(t, "pki")
    subprocess.run([os.path.join(build, "ktlsgw"), "pki", "init", pki], check=True,
                   stdout=subprocess.DEVNULL)
    procs = []
    try:
        be = subprocess.Popen([os.path.join(build, "kg-backend"), "--listen", "127.0.0.1:0",
                               "--mode", "echo", "--port-file", t + "/be.port"],
                              stderr=subprocess.DEVNULL)
        procs.append(be)
        for _ in range(200):
            if os.path.exists(t + "/be.port") and os.path.getsize(t + "/be.port"):
                break
            time.sleep(0.05)
        be_port = open(t + "/be.port").read().strip()
        conf = os.path.join(t, "gw.conf")

        def write_conf(i):
            # every reload changes something the new connections use
            with open(conf + ".tmp", "w") as f:
                f.write("[global]\nworkers = 2\nstate_dir = %s/state\nrevocation = off\n"
                        "\n[listener edge]\nlisten = 127.0.0.1:0\n"
                        "cert = %s/server.pem\nkey = %s/server.key\nclient_ca = %s/client-ca.pem\n"
                        "trust = %s/ca.pem\nbackend = 127.0.0.1:%s\nidle_timeout = %ds\n"
                        % (t, pki, pki, pki, pki, be_port, 30 + i % 7))
            os.replace(conf + ".tmp", conf)

        write_conf(0)
        logpath = os.path.join(t, "gw.log")
        logf = open(logpath, "w")
        gw = subprocess.Popen([gw_bin, "run", "-c", conf, "--ready-file", t + "/ready"],
                              stdout=logf, stderr=subprocess.STDOUT)
        procs.append(gw)
        for _ in range(600):
            if os.path.exists(t + "/ready") and os.path.getsize(t + "/ready"):
                break
            if gw.poll() is not None:
                sys.exit("the gateway did not start: " + open(logpath).read()[-2000:])
            time.sleep(0.05)
        port = open(t + "/ready").read().split()[1].rsplit(":", 1)[1]
        lg = [os.path.join(build, "kg-loadgen"), "--connect", "127.0.0.1:" + port,
              "--cert", pki + "/alice.pem", "--key", pki + "/alice.key", "--cacert", pki + "/ca.pem"]
        # load for as long as the reloads run: handshakes and one long stream
        load = [subprocess.Popen(lg[:1] + ["handshake"] + lg[1:] + ["-c", "2", "--duration", "3600"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                subprocess.Popen(lg[:1] + ["echo"] + lg[1:] + ["-c", "2", "--bytes", "64G"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        procs += load
        log = Log(logpath)
        log.f.seek(0, os.SEEK_END)
        warm = None
        t0 = time.monotonic()
        for i in range(1, reloads + 1):
            write_conf(i)
            gw.send_signal(signal.SIGHUP)
            # the next SIGHUP only after this one was applied: signals sent
            # faster would merge into one
            if not log.wait_for("SIGHUP: configuration reloaded", 60):
                sys.exit("reload %d was not applied within 60 s: %s"
                         % (i, open(logpath).read()[-2000:]))
            if gw.poll() is not None:
                sys.exit("the gateway died at reload %d: %s" % (i, open(logpath).read()[-2000:]))
            if i == max(1, reloads // 10):
                warm = rss_kib(gw.pid)
        took = time.monotonic() - t0
        end = rss_kib(gw.pid)
        for p in load:
            alive = p.poll() is None
            if not alive:
                sys.exit("a client stopped during the soak (exit %s)" % p.returncode)
        gw.send_signal(signal.SIGINT)
        try:
            rc = gw.wait(timeout=120)
        except subprocess.TimeoutExpired:
            # say where it hangs: each thread's state and kernel wait
            for tid in sorted(os.listdir("/proc/%d/task" % gw.pid)):
                base = "/proc/%d/task/%s/" % (gw.pid, tid)
                try:
                    comm = open(base + "comm").read().strip()
                    wchan = open(base + "wchan").read().strip()
                    state = open(base + "stat").read().split()[2]
                except OSError:
                    continue
                print("thread %s %s state %s wchan %s" % (tid, comm, state, wchan))
            print(open(logpath, errors="replace").read()[-3000:])
            subprocess.run(["gdb", "-p", str(gw.pid), "-batch", "-ex", "thread apply all bt 12"],
                           stdin=subprocess.DEVNULL, timeout=60)
            sys.exit("the gateway did not stop within 120 s of SIGINT")
        errs = [l for l in open(logpath, errors="replace") if "SIGHUP:" in l and "stays in force" in l]
        ok = rc == 0 and not errs and end <= warm + slack
        print("reload soak: %d SIGHUPs in %.1f s under load; RSS %d KiB after %d, %d KiB at the "
              "end (slack %d KiB); gateway exit %d; failed reloads %d: %s"
              % (reloads, took, warm, max(1, reloads // 10), end, slack, rc, len(errs),
                 "ok" if ok else "FAILED"))
        sys.exit(0 if ok else 1)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        subprocess.run(["rm", "-rf", t])


if __name__ == "__main__":
    main()
