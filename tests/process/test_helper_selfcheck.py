"""Self-check of the process-test harness: cilib + ci-helper, no chroma-init."""

import json
import os
import signal
import subprocess
import sys
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cilib  # noqa: E402
from cilib import CI_HELPER, Init, helper, new_tag, tmpdir, wait_until  # noqa: E402


def read_file(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def bare(args, pid1=True, binary=None, **kw):
    """Init running the helper (or another binary) itself, without chroma-init."""
    return Init(None, args, pid1=pid1, binary=binary or CI_HELPER, log_format=None, **kw)


class HelperSelfCheck(unittest.TestCase):
    def test_exit_code_through_unshare(self):
        with bare(["exit", "7"]) as p:
            self.assertEqual(p.wait(10), 7)

    def test_kill_self(self):
        with bare(["kill-self", "SIGUSR1"], pid1=False) as p:
            self.assertEqual(p.wait(10), -signal.SIGUSR1)

    def test_serve_http_routes(self):
        tag = new_tag()
        with tmpdir() as d:
            port_file = os.path.join(d, "port")
            with bare(["--tag", tag, "serve-http", port_file, "--status", "200", "--route",
                       "/health=503", "--route", "/gone=410"], pid1=False) as p:
                port = int(wait_until(lambda: read_file(port_file), 10, what="port file"))
                base = "http://127.0.0.1:%d" % port
                with urllib.request.urlopen(base + "/other?x=1", timeout=5) as r:
                    self.assertEqual(r.status, 200)
                    self.assertEqual(json.loads(r.read()), {"status": 200, "path": "/other"})
                for path, code in (("/health", 503), ("/gone", 410)):
                    with self.assertRaises(urllib.error.HTTPError) as cm:
                        urllib.request.urlopen(base + path, timeout=5)
                    self.assertEqual(cm.exception.code, code)
                    cm.exception.close()
                self.assertEqual(cilib.find_tagged(tag), [p.init_pid()])
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)

    def test_serve_http_reset(self):
        with tmpdir() as d:
            port_file = os.path.join(d, "port")
            with bare(["serve-http", port_file, "--reset"], pid1=False) as p:
                port = int(wait_until(lambda: read_file(port_file), 10, what="port file"))
                with self.assertRaises((ConnectionError, urllib.error.URLError)):
                    urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5)
                p.signal(signal.SIGTERM)
                self.assertEqual(p.wait(10), 0)

    def test_inspect_json(self):
        with tmpdir() as d:
            out = os.path.join(d, "inspect.json")
            with bare(["inspect", out], env={"CI_SELFCHECK": "é x"}) as p:
                self.assertEqual(p.wait(10), 0)
            info = json.loads(read_file(out))
            self.assertEqual(info["pid"], 1)  # PID 1 of its namespace
            self.assertEqual(info["env"]["CI_SELFCHECK"], "é x")
            self.assertEqual(info["fds"][:3], [0, 1, 2])
            for key in ("ppid", "pgid", "sid", "uid", "gid", "groups", "cwd", "SigBlk", "SigIgn"):
                self.assertIn(key, info)
            int(info["SigBlk"], 16)

    def test_orphans_leave_nothing(self):
        tag = new_tag()
        # sh (PID 1 of the namespace) stays 3 s while the orphans live 5 s:
        # they are observable, and its exit takes them with the namespace.
        script = " ".join(helper("orphans", "100", "--linger-ms", "5000", tag=tag)) + "; sleep 3"
        with bare(["-c", script], binary="sh") as p:
            # The orphans are only observable in /proc: poll.
            wait_until(lambda: len(cilib.find_tagged(tag)) >= 2, 30, what="orphans")
            self.assertEqual(p.wait(20), 0)
        self.assertEqual(cilib.find_tagged(tag), [])
        self.assertEqual(cilib.zombies(tag), [])

    def test_bigline_exact(self):
        n = 1024 * 1024 + 3
        with bare(["bigline", str(n)]) as p:
            self.assertEqual(p.wait(10), 0)
            lines = p.stdout_bytes()
        self.assertEqual(len(lines), 1)
        self.assertEqual(len(lines[0]), n)
        self.assertEqual(lines[0][:20], b"0123456789abcdef0123")
        with bare(["bigline", "1000", "--stderr"]) as p:
            self.assertEqual(p.wait(10), 0)
            self.assertEqual([len(l) for l in p.stderr_bytes()], [1000])

    def test_lines_and_partial(self):
        with bare(["lines", "3"]) as p:
            self.assertEqual(p.wait(10), 0)
            self.assertEqual(p.stdout_lines(), ["line 1", "line 2", "line 3"])
        with bare(["partial", "no newline"]) as p:
            self.assertEqual(p.wait(10), 0)
            self.assertEqual(p.stdout_lines(), ["no newline"])

    def test_events_and_wait_event(self):
        script = ('echo "not json" >&2; echo \'{"event": "started", "pid": 5}\' >&2; '
                  'echo \'[1]\' >&2; read x')  # blocks on stdin (/dev/null: EOF)
        with bare(["-c", script], binary="sh") as p:
            ev = p.wait_event(lambda e: e.get("event") == "started", 10)
            self.assertEqual(ev["pid"], 5)
            self.assertEqual(p.wait(10), 1)  # `read` at EOF fails
            self.assertEqual(len(p.events()), 1)
            self.assertIn("not json", p.stderr_text())
            with self.assertRaises(TimeoutError):
                p.wait_event(lambda e: e.get("event") == "never", 1)

    def test_record_signals_via_init_signal(self):
        with tmpdir() as d:
            f = os.path.join(d, "sigs")
            with bare(["record-signals", f, "--exit-on", "SIGUSR2"]) as p:
                wait_until(lambda: (read_file(f) or "").startswith("READY"), 10, what="READY")
                p.signal(signal.SIGHUP)
                wait_until(lambda: "SIGHUP" in read_file(f), 10, what="SIGHUP recorded")
                p.signal(signal.SIGUSR2)
                self.assertEqual(p.wait(10), 0)
            self.assertEqual(read_file(f), "READY\nSIGHUP\nSIGUSR2\n")

    def test_close_kills_tree(self):
        tag = new_tag()
        p = bare(["--tag", tag, "spawn-tree", "3"], pid1=False)
        try:
            wait_until(lambda: len(cilib.find_tagged(tag)) == 4, 10, what="tree")
        finally:
            p.close()
        self.assertFalse(p.running())
        wait_until(lambda: cilib.find_tagged(tag) == [], 10, what="tree gone")

    def test_ignore_term_and_pidfile(self):
        with tmpdir() as d:
            ready, pidf = os.path.join(d, "ready"), os.path.join(d, "pid")
            with bare(["pidfile", pidf, CI_HELPER, "ignore-term", ready]) as p:
                wait_until(lambda: read_file(ready), 10, what="ready file")
                self.assertEqual(int(read_file(pidf)), 1)
                p.signal(signal.SIGTERM)  # ignored
                with self.assertRaises(subprocess.TimeoutExpired):
                    p.proc.wait(0.3)  # absence of an exit: a bounded wait is the check
                self.assertTrue(p.running())

    def test_touch_after(self):
        with tmpdir() as d:
            path = os.path.join(d, "f")
            with bare(["touch-after", "50", path, "hello"]) as p:
                self.assertEqual(p.wait(10), 0)
            self.assertEqual(read_file(path), "hello")


if __name__ == "__main__":
    if not CI_HELPER or not os.access(CI_HELPER, os.X_OK):
        sys.exit("CI_HELPER is not set to the built ci-helper")
    unittest.main(verbosity=2)
