"""The control socket: `chroma-init ctl`, `chroma-init health`, and stops
remembered for `unless-stopped` across restarts of the init."""

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cilib import CI_BINARY, Init, helper, new_tag, kill_tagged, tmpdir, wait_until  # noqa: E402


def ctl(sock, *args, timeout=15):
    """Runs `chroma-init ctl --socket SOCK ARGS...`: (exit code, stdout, stderr)."""
    p = subprocess.run([CI_BINARY, "ctl", "--socket", sock] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def health(sock, timeout=15):
    p = subprocess.run([CI_BINARY, "health", "--socket", sock], capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


def connect(sock, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    return s


def read_line(s):
    """One reply line (bytes, without the newline); b"" on EOF."""
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    return buf[:-1]


def request(sock, req):
    """Sends one request (dict or raw bytes line) on a new connection; returns the reply."""
    with connect(sock) as s:
        s.sendall(req if isinstance(req, bytes) else json.dumps(req).encode() + b"\n")
        return json.loads(read_line(s))


def by_name(reply):
    return {s["name"]: s for s in reply["services"]}


def ev(service, event):
    return lambda e: e.get("service") == service and e.get("event") == event


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


def sanitized(pid):
    with open("/proc/%d/maps" % pid) as f:
        return any("libasan" in l or "libubsan" in l for l in f)


class CtlTest(unittest.TestCase):
    def setUp(self):
        self.tag = new_tag()
        self._state = tmpdir(prefix="ci-ctl-")
        self.state = self._state.__enter__()
        self.sock = os.path.join(self.state, "state", "ctl.sock")

    def tearDown(self):
        kill_tagged(self.tag)
        self._state.__exit__(None, None, None)

    def config(self, services):
        return {"state_dir": os.path.join(self.state, "state"), "services": services}

    def sleeper(self, restart="unless-stopped", **kw):
        d = {"command": helper("sleep", 1000, tag=self.tag), "restart": restart,
             "stop_grace_period": "2s"}
        d.update(kw)
        return d


class Verbs(CtlTest):
    def test_every_verb(self):
        rec = os.path.join(self.state, "signals")
        cfg = self.config({
            "svc": self.sleeper(),
            "rec": {"command": helper("record-signals", rec, tag=self.tag), "restart": "always"},
        })
        with Init(cfg) as init:
            init.wait_event(ev("svc", "started"), 10)
            init.wait_event(ev("rec", "started"), 10)
            wait_until(lambda: os.path.exists(rec) and b"READY" in slurp(rec), 10,
                       what="record-signals ready")
            st = os.stat(self.sock)
            self.assertTrue(stat.S_ISSOCK(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

            # status: table and JSON
            rc, out, err = ctl(self.sock, "status")
            self.assertEqual(rc, 0, err)
            lines = out.splitlines()
            self.assertEqual(lines[0].split(), ["SERVICE", "STATE", "HEALTH", "PID", "UPTIME",
                                                "RESTARTS", "LAST", "EXIT"])
            self.assertTrue(any(l.split()[:2] == ["svc", "running"] for l in lines[1:]), out)
            rc, out, err = ctl(self.sock, "status", "--json")
            self.assertEqual(rc, 0, err)
            reply = json.loads(out)
            self.assertTrue(reply["ok"])
            svc = by_name(reply)["svc"]
            for key in ("name", "state", "health", "pid", "uptime_s", "restarts", "last_exit",
                        "Health"):
                self.assertIn(key, svc)
            self.assertEqual(svc["state"], "running")
            self.assertIsInstance(svc["pid"], int)
            self.assertIsNone(svc["last_exit"])
            self.assertIsNone(svc["Health"])  # no healthcheck, as docker inspect

            # signal
            rc, out, err = ctl(self.sock, "signal", "rec", "SIGUSR1")
            self.assertEqual(rc, 0, err)
            wait_until(lambda: b"SIGUSR1" in slurp(rec), 10, what="SIGUSR1 recorded")
            rc, out, err = ctl(self.sock, "signal", "rec", "NOPE")
            self.assertEqual(rc, 2)

            # stop: recorded in state_dir
            m = init.mark()
            rc, out, err = ctl(self.sock, "stop", "svc")
            self.assertEqual(rc, 0, err)
            init.wait_event(ev("svc", "stopped"), 10, since=m)
            svc = by_name(request(self.sock, {"cmd": "status"}))["svc"]
            self.assertEqual(svc["state"], "stopped")
            self.assertIsNone(svc["pid"])
            self.assertEqual(svc["last_exit"], "killed by SIGTERM")
            with open(os.path.join(self.state, "state", "stopped.json")) as f:
                self.assertIn("svc", json.load(f)["stopped"])
            rc, out, err = ctl(self.sock, "signal", "svc", "SIGHUP")
            self.assertEqual(rc, 1)
            self.assertIn("not running", err)

            # start: forgets the stop
            m = init.mark()
            rc, out, err = ctl(self.sock, "start", "svc")
            self.assertEqual(rc, 0, err)
            started = init.wait_event(ev("svc", "started"), 10, since=m)
            with open(os.path.join(self.state, "state", "stopped.json")) as f:
                self.assertNotIn("svc", json.load(f)["stopped"])
            rc, out, err = ctl(self.sock, "start", "svc")
            self.assertEqual(rc, 1)
            self.assertIn("already running", err)

            # restart: a new process
            m = init.mark()
            rc, out, err = ctl(self.sock, "restart", "svc")
            self.assertEqual(rc, 0, err)
            init.wait_event(ev("svc", "stopped"), 10, since=m)
            again = init.wait_event(ev("svc", "started"), 10, since=m)
            self.assertNotEqual(again.get("pid"), started.get("pid"))
            svc = by_name(request(self.sock, {"cmd": "status"}))["svc"]
            self.assertEqual(svc["state"], "running")
            self.assertEqual(svc["restarts"], 1)

            # errors
            rc, out, err = ctl(self.sock, "stop", "nope")
            self.assertEqual(rc, 1)
            self.assertIn('unknown service "nope"', err)
            self.assertEqual(request(self.sock, {"cmd": "stop", "service": "nope"}),
                             {"ok": False, "error": 'unknown service "nope"'})
            for bad in (["frobnicate"], ["start"], ["status", "extra"], ["--bogus", "status"], []):
                self.assertEqual(ctl(self.sock, *bad)[0], 2, bad)

            # shutdown
            rc, out, err = ctl(self.sock, "shutdown")
            self.assertEqual(rc, 0, err)
            self.assertEqual(init.wait(15), 0)
        self.assertFalse(os.path.exists(self.sock), "socket removed at exit")

    def test_unreachable_socket(self):
        path = os.path.join(self.state, "none", "ctl.sock")
        rc, out, err = ctl(path, "status")
        self.assertEqual(rc, 1)
        self.assertIn("chroma-init ctl: unable to connect to %s: no such file or directory" % path,
                      err)
        rc, out = health(path)
        self.assertEqual(rc, 1)
        self.assertIn("unable to connect", out)

    def test_socket_from_config_and_env(self):
        cfg = self.config({"svc": self.sleeper()})
        with Init(cfg) as init:
            init.wait_event(ev("svc", "started"), 10)
            p = subprocess.run([CI_BINARY, "ctl", "--config", init.config_path, "status"],
                               capture_output=True, text=True, timeout=15)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("svc", p.stdout)
            env = dict(os.environ, CHROMA_INIT_SOCKET=self.sock)
            p = subprocess.run([CI_BINARY, "ctl", "status", "--json"], capture_output=True,
                               text=True, timeout=15, env=env)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(json.loads(p.stdout)["ok"])


class UnlessStopped(CtlTest):
    def test_stop_survives_an_init_restart(self):
        cfg = self.config({"keep": self.sleeper("unless-stopped"),
                           "alw": self.sleeper("always")})
        with Init(cfg) as init:
            init.wait_event(ev("keep", "started"), 10)
            init.wait_event(ev("alw", "started"), 10)
            for name in ("keep", "alw"):
                m = init.mark()
                self.assertEqual(ctl(self.sock, "stop", name)[0], 0)
                init.wait_event(ev(name, "stopped"), 10, since=m)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)

        # Same state_dir: `keep` stays stopped, `always` ignores the record (as Docker).
        with Init(cfg) as init:
            init.wait_event(ev("keep", "stopped"), 10)
            init.wait_event(ev("alw", "started"), 10)
            svcs = by_name(request(self.sock, {"cmd": "status"}))
            self.assertEqual(svcs["keep"]["state"], "stopped")
            self.assertEqual(svcs["alw"]["state"], "running")
            m = init.mark()
            self.assertEqual(ctl(self.sock, "start", "keep")[0], 0)
            init.wait_event(ev("keep", "started"), 10, since=m)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)

        # Started again: remembered as running.
        with Init(cfg) as init:
            init.wait_event(ev("keep", "started"), 10)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)

    def test_stale_socket_replaced(self):
        os.makedirs(os.path.dirname(self.sock))
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        dead.bind(self.sock)
        dead.close()  # a socket file nobody listens on, as after a crash
        cfg = self.config({"svc": self.sleeper()})
        with Init(cfg) as init:
            init.wait_event(ev("svc", "started"), 10)
            self.assertTrue(request(self.sock, {"cmd": "status"})["ok"])
            # A second init on the same state_dir leaves the live one alone.
            with Init(cfg) as second:
                second.wait_event(lambda e: e.get("event") == "ctl"
                                  and "another init" in e.get("msg", ""), 10)
                second.signal(15)
                second.wait(15)
            self.assertTrue(request(self.sock, {"cmd": "status"})["ok"])
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)


class Permissions(CtlTest):
    def as_nobody(self, argv):
        return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
                              + argv, capture_output=True, text=True, timeout=15)

    @unittest.skipUnless(os.geteuid() == 0, "needs root to switch to nobody")
    def test_other_uid_refused(self):
        os.chmod(self.state, 0o755)
        cfg = self.config({"svc": self.sleeper()})
        with Init(cfg) as init:
            init.wait_event(ev("svc", "started"), 10)
            # The socket file itself is 0600.
            p = self.as_nobody([CI_BINARY, "ctl", "--socket", self.sock, "status"])
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("permission denied", p.stderr)
            # Even when the file is opened up, SO_PEERCRED refuses the peer.
            os.chmod(self.sock, 0o666)
            m = init.mark()
            p = self.as_nobody([CI_BINARY, "ctl", "--socket", self.sock, "status"])
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("chroma-init ctl: permission denied", p.stderr)
            init.wait_event(lambda e: e.get("event") == "ctl" and "uid 65534" in e.get("msg", ""),
                            10, since=m)
            p = self.as_nobody(["/usr/bin/python3", "-c", (
                "import socket,sys\n"
                "s=socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])\n"
                "try: s.sendall(b'{\"cmd\":\"shutdown\"}\\n')\n"
                "except OSError: pass  # refused before the request was read\n"
                "print(s.makefile('rb').readline().decode().strip())\n"), self.sock])
            self.assertEqual(json.loads(p.stdout), {"ok": False, "error": "permission denied"},
                             p.stderr)
            self.assertTrue(init.running())
            self.assertEqual(ctl(self.sock, "status")[0], 0)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)


class Robustness(CtlTest):
    def test_100_concurrent_clients_while_crashing(self):
        cfg = self.config({
            "crash": {"command": ["sh", "-c", "sleep 0.05; exit 1"], "restart": "always"},
            "svc": self.sleeper(healthcheck={"test": ["CMD", "true"], "interval": "100ms"}),
        })
        with Init(cfg) as init:
            init.wait_event(ev("svc", "started"), 10)
            init.wait_event(ev("crash", "exited"), 10)
            pid = init.init_pid()
            self.assertTrue(request(self.sock, {"cmd": "status"})["ok"])
            before = rss_kib(pid)
            errors, counts = [], [0] * 100
            stop_at = time.monotonic() + 4

            def client(i):
                try:
                    s = connect(self.sock)
                    f = s.makefile("rb")
                    while time.monotonic() < stop_at:
                        if i % 4 == 0:  # some reconnect every time
                            f.close()
                            s.close()
                            s = connect(self.sock)
                            f = s.makefile("rb")
                        s.sendall(b'{"cmd":"status"}\n')
                        line = f.readline()
                        reply = json.loads(line)
                        if reply.get("ok") is not True or len(reply["services"]) != 2:
                            raise AssertionError("bad reply %r" % line[:200])
                        for svc in reply["services"]:
                            if svc["state"] not in ("waiting", "running", "stopping", "backoff"):
                                raise AssertionError("bad state %r" % svc)
                        counts[i] += 1
                    f.close()
                    s.close()
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append("client %d: %r" % (i, e))

            threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            self.assertEqual(errors, [])
            self.assertTrue(all(c > 0 for c in counts), counts)
            crash = by_name(request(self.sock, {"cmd": "status"}))["crash"]
            self.assertGreater(crash["restarts"], 1)
            self.assertEqual(crash["last_exit"], "exited 1")
            after = rss_kib(pid)
            sys.stderr.write("RSS before %d KiB, after %d KiB, %d requests\n"
                             % (before, after, sum(counts)))
            if not sanitized(pid):  # ASan's quarantine keeps freed memory
                self.assertLessEqual(after - before, 1024)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)

    def test_garbage_oversized_and_half_closed(self):
        cfg = self.config({"svc": self.sleeper()})
        with Init(cfg) as init:
            init.wait_event(ev("svc", "started"), 10)

            # Garbage gets an error reply; the connection stays usable.
            with connect(self.sock) as s:
                for junk in (b"garbage\n", b"\x00\xff\xfe\n", b"[1,2]\n", b'{"cmd":42}\n',
                             b'{"cmd":"frob"}\n', b'{"cmd":"stop"}\n', b'"' + b"x" * 1000 + b"\n",
                             b"[" * 5000 + b"\n"):
                    s.sendall(junk)
                    reply = json.loads(read_line(s))
                    self.assertIs(reply["ok"], False, junk[:40])
                    self.assertIsInstance(reply["error"], str)
                s.sendall(b"\n   \n{\"cmd\":\"status\"}\r\n")
                self.assertTrue(json.loads(read_line(s))["ok"])

            # A 10 MB line: an error reply, then the connection is closed.
            with connect(self.sock) as s:
                def flood():
                    try:
                        s.sendall(b"x" * (10 * 1024 * 1024))
                    except OSError:
                        pass
                t = threading.Thread(target=flood)
                t.start()
                reply = json.loads(read_line(s))
                self.assertFalse(reply["ok"])
                self.assertIn("too long", reply["error"])
                try:
                    rest = s.recv(100)
                except ConnectionResetError:
                    rest = b""
                self.assertEqual(rest, b"")
                t.join(20)
                self.assertFalse(t.is_alive())

            # A complete request half-closed without its newline is answered.
            with connect(self.sock) as s:
                s.sendall(b'{"cmd":"status"}')
                s.shutdown(socket.SHUT_WR)
                self.assertTrue(json.loads(read_line(s))["ok"])
                self.assertEqual(s.recv(10), b"")
            # A truncated one gets an error, then EOF.
            with connect(self.sock) as s:
                s.sendall(b'{"cmd":"sta')
                s.shutdown(socket.SHUT_WR)
                self.assertFalse(json.loads(read_line(s))["ok"])
                self.assertEqual(s.recv(10), b"")
            # Clients that vanish mid-request, or say nothing.
            for data in (b'{"cmd":"status"', b"", b'{"cmd":"status"}\n{"cmd":"st'):
                s = connect(self.sock)
                s.sendall(data)
                s.close()
            # Many requests without reading the replies, then a reset.
            s = connect(self.sock)
            try:
                s.sendall(b'{"cmd":"status"}\n' * 20000)
            except OSError:
                pass
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()

            self.assertTrue(init.running())
            self.assertTrue(request(self.sock, {"cmd": "status"})["ok"])
            rc, out, err = ctl(self.sock, "status")
            self.assertEqual(rc, 0, err)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)


class Health(CtlTest):
    def test_health_follows_the_healthcheck(self):
        marker = os.path.join(self.state, "healthy")
        open(marker, "w").close()
        cfg = self.config({
            "db": self.sleeper(healthcheck={"test": ["CMD-SHELL", "test -f " + marker],
                                            "interval": "100ms", "retries": 1,
                                            "start_interval": "100ms"}),
            "once": {"command": ["true"]},  # a one-shot: does not count once done
        })
        with Init(cfg) as init:
            init.wait_event(ev("db", "healthy"), 10)
            init.wait_event(ev("once", "exited"), 10)
            t0 = time.monotonic()
            rc, out = health(self.sock)
            self.assertEqual(rc, 0, out)
            self.assertLess(time.monotonic() - t0, 2)
            reply = by_name(request(self.sock, {"cmd": "status"}))["db"]
            h = reply["Health"]
            self.assertEqual(h["Status"], "healthy")
            self.assertEqual(h["FailingStreak"], 0)
            self.assertGreaterEqual(len(h["Log"]), 1)
            self.assertLessEqual(len(h["Log"]), 5)
            entry = h["Log"][-1]
            self.assertEqual(entry["ExitCode"], 0)
            self.assertRegex(entry["Start"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
            self.assertRegex(entry["End"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
            self.assertIn("Output", entry)

            m = init.mark()
            os.unlink(marker)
            init.wait_event(ev("db", "unhealthy"), 10, since=m)
            rc, out = health(self.sock)
            self.assertEqual(rc, 1)
            self.assertEqual(len(out.strip().splitlines()), 1, out)
            self.assertIn("db: unhealthy (", out)
            self.assertIn("failure", out)

            m = init.mark()
            open(marker, "w").close()
            init.wait_event(ev("db", "healthy"), 10, since=m)
            self.assertEqual(health(self.sock)[0], 0)

            m = init.mark()
            self.assertEqual(ctl(self.sock, "stop", "db")[0], 0)
            init.wait_event(ev("db", "stopped"), 10, since=m)
            rc, out = health(self.sock)
            self.assertEqual(rc, 1)
            self.assertIn("db: stopped", out)
            self.assertEqual(ctl(self.sock, "shutdown")[0], 0)
            self.assertEqual(init.wait(15), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
