#!/usr/bin/env python3
"""End-to-end: the reference stack (compose/init.json) with real Chroma and real nginx.

cert-gen -> chromadb (native HTTP probe) -> nginx (TLS, compose/nginx.conf.template rendered
with this test's ports and directories), chroma-init as PID 1 of a new PID namespace (and once
as a plain process, as compose/quickstart runs it). Every test starts its own stack on free
ports with its own data, certs, etc and state directories.

Needs: CHROMA_BIN (set by tests/run; default ~/.cache/chroma-init/chroma/node_modules/.bin/chroma),
node >= 20, nginx, curl, unshare.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "process"))
import cilib  # noqa: E402

SRC = cilib.CI_SOURCE_DIR or os.path.abspath(os.path.join(HERE, "..", ".."))
INIT_JSON = os.path.join(SRC, "compose", "init.json")
RENDER = os.path.join(SRC, "compose", "render-nginx-conf")
CHROMA_BIN = os.environ.get("CHROMA_BIN") or os.path.expanduser(
    "~/.cache/chroma-init/chroma/node_modules/.bin/chroma")
API = "/api/v2/tenants/default_tenant/databases/default_database/collections"

START_TIMEOUT = 90      # Chroma's first start on a fresh data dir (usually < 2 s)
SHUTDOWN_BUDGET = 9.0   # compose/init.json's shutdown_timeout


def _starttime(pid):
    raw = cilib._read("/proc/%d/stat" % pid)
    if not raw:
        return None
    return int(raw[raw.rindex(b")") + 2:].split()[19])


def _alive(pid, start):
    """pid still runs (same process: same start time) and is not a zombie."""
    st = cilib.proc_stat(pid)
    return st is not None and st[0] != "Z" and _starttime(pid) == start


class Stack:
    """The reference stack on free ports. `root` holds data/, certs/, etc/, run/; pass the
    same root again to restart on the same data and certificates."""

    def __init__(self, root, pid1=True, config=None):
        self.root = root
        self.https_port = cilib.free_port()
        self.chroma_port = cilib.free_port()
        while self.chroma_port == self.https_port:
            self.chroma_port = cilib.free_port()
        d = {k: os.path.join(root, k) for k in ("data", "certs", "etc", "run")}
        for p in d.values():
            os.makedirs(p, exist_ok=True)
        self.dirs = d
        self.ca = os.path.join(d["certs"], "servercert.pem")
        subprocess.run([RENDER, os.path.join(d["etc"], "nginx.conf"), d["certs"],
                        str(self.https_port), str(self.chroma_port), d["run"]], check=True)
        path = os.pathsep.join([os.path.dirname(CHROMA_BIN), os.environ.get("PATH", "")])
        env = {"CHROMA_DATA": d["data"], "CHROMA_CERTS": d["certs"], "CHROMA_INIT_ETC": d["etc"],
               "CHROMA_INIT_STATE": d["run"], "CHROMA_PORT": self.chroma_port,
               "CHROMA_HTTPS_PORT": self.https_port, "CHROMA_DOMAIN": "localhost",
               "ANONYMIZED_TELEMETRY": "FALSE", "PATH": path}
        self.t0 = time.monotonic()
        if config is None:
            self.init = cilib.Init(None, ["--config", INIT_JSON], pid1=pid1, env=env)
        else:  # a variant of compose/init.json (a dict), written to the init's temp dir
            self.init = cilib.Init(config, [], pid1=pid1, env=env)

    def url(self, path):
        return "https://localhost:%d%s" % (self.https_port, path)

    def ev(self, service, event, timeout=START_TIMEOUT, since=0):
        return self.init.wait_event(
            lambda e: e.get("service") == service and e.get("event") == event, timeout, since)

    def wait_up(self):
        """Until nginx has started (so, per the config, Chroma was healthy before) and
        listens. `started` is reported at exec; nginx binds its port a few ms later and
        compose/init.json gives nginx no healthcheck, so the port is polled (only
        observable by polling)."""
        self.ev("nginx", "started")
        cilib.wait_until(self.https_listening, 30, what="nginx listening on %d" % self.https_port)

    def https_listening(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as c:
            return c.connect_ex(("127.0.0.1", self.https_port)) == 0

    def curl(self, path, method="GET", body=None, cacert=True, url=None):
        """(status, body) of a request through nginx, the certificate verified by name."""
        argv = ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}",
                "-X", method]
        if cacert:
            argv += ["--cacert", self.ca]
        if body is not None:
            argv += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        r = subprocess.run(argv + [url or self.url(path)], capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr.strip()
        text, _, code = r.stdout.rpartition("\n")
        return int(code), text

    def curl_ok(self, path, method="GET", body=None):
        code, text = self.curl(path, method, body)
        if code is None or not 200 <= code < 300:
            raise AssertionError("%s %s -> %s %s\n%s" % (method, path, code, text,
                                                         self.init.stderr_text()[-3000:]))
        return json.loads(text) if text else None

    def chroma_pid(self):
        """Host pid of `chroma run` (events report namespace pids): the init's child whose
        command line holds our data directory."""
        for pid in cilib.children(self.init.init_pid()):
            argv = cilib.cmdline(pid)
            if "run" in argv and self.dirs["data"] in argv:
                return pid
        return None

    def close(self):
        self.init.close()


class StackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [p for p in ("nginx", "curl", "unshare", "node") if not shutil.which(p)]
        if not os.access(CHROMA_BIN, os.X_OK):
            missing.append("chroma (CHROMA_BIN=%s; tests/run installs it)" % CHROMA_BIN)
        if missing:
            raise AssertionError("e2e tests need: " + ", ".join(missing))

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="ci-e2e-")
        self.stacks = []

    def tearDown(self):
        for s in self.stacks:
            s.close()
        cilib.kill_tagged(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def stack(self, pid1=True, config=None):
        s = Stack(self.root, pid1, config)
        self.stacks.append(s)
        return s

    # (1)
    def test_https_heartbeat_verified_by_name(self):
        s = self.stack()
        s.wait_up()
        code, body = s.curl("/api/v2/heartbeat")
        self.assertEqual(code, 200, body)
        self.assertIn("nanosecond heartbeat", json.loads(body))
        # The chain and the name are checked: 127.0.0.1 is not in the certificate...
        code, err = s.curl(None, url="https://127.0.0.1:%d/api/v2/heartbeat" % s.https_port)
        self.assertIsNone(code, "curl accepted a certificate for the wrong name")
        self.assertRegex(err, "(?i)certificate|subject|name")
        # ...and without the CA the self-signed certificate is refused.
        code, err = s.curl("/api/v2/heartbeat", cacert=False)
        self.assertIsNone(code, "curl accepted the self-signed certificate without --cacert")
        # Plain HTTP to the TLS port is refused by nginx (400), never proxied.
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://localhost:%d/api/v2/heartbeat" % s.https_port],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout, "400")

    # (2)
    def test_nginx_starts_after_chroma_healthy(self):
        s = self.stack()
        s.wait_up()
        evs = s.init.events()

        def first(service, event):
            for e in evs:
                if e.get("service") == service and e.get("event") == event:
                    return e
            self.fail("no %s %s event in %s" % (service, event, evs))

        healthy = first("chromadb", "healthy")
        started = first("nginx", "started")
        certs = first("cert-gen", "exited")
        self.assertGreater(started["mono_us"], healthy["mono_us"],
                           "nginx started before Chroma was healthy")
        self.assertGreater(started["mono_us"], certs["mono_us"],
                           "nginx started before cert-gen finished")
        self.assertLess(evs.index(healthy), evs.index(started))
        # Chroma's start period probes every 100 ms: nginx follows its first healthy probe
        # closely (generous bound for slow CI machines and sanitizer builds).
        self.assertLess(started["mono_us"] - healthy["mono_us"], 1_000_000)
        # nginx came up once and stayed up: no signal it could not handle yet, no restart.
        self.assert_nginx_undisturbed(s, 0)

    def assert_nginx_undisturbed(self, s, since):
        """No reload/exited/stopping event for nginx within 1 s after its start (the reload
        debounce is 100 ms). Waiting for an event that must not come needs a time bound."""
        started = s.ev("nginx", "started", 5, since)
        bad = ("reload", "exited", "stopping", "stopped")
        try:
            e = s.init.wait_event(lambda e: e.get("service") == "nginx" and e.get("event") in bad,
                                  1.0, since)
        except TimeoutError:
            return
        self.fail("nginx disturbed right after its start (pid %s): %s\n%s"
                  % (started.get("pid"), e, s.init.stderr_text()[-2500:]))

    def test_no_reload_for_certificates_written_before_nginx_started(self):
        """The certificates cert-gen writes before nginx starts are not a change for nginx:
        no SIGHUP (a SIGHUP in nginx's first milliseconds, before it installs its handlers,
        kills it). Deterministic variant of the reference config: nginx waits only for
        cert-gen, so it runs when the watch's 100 ms debounce fires."""
        with open(INIT_JSON) as f:
            cfg = json.load(f)
        del cfg["services"]["nginx"]["depends_on"]["chromadb"]
        s = self.stack(config=cfg)
        self.assert_nginx_undisturbed(s, 0)

    # (3)
    def test_collection_add_and_query_over_tls(self):
        s = self.stack()
        s.wait_up()
        col = s.curl_ok(API, "POST", {"name": "e2e-docs", "metadata": {"k": "v"}})
        self.assertEqual(col["name"], "e2e-docs")
        cid = col["id"]
        s.curl_ok(API + "/%s/add" % cid, "POST", {
            "ids": ["a", "b", "c"],
            "embeddings": [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            "documents": ["alpha", "beta", "gamma"],
            "metadatas": [{"n": 1}, {"n": 2}, {"n": 3}]})
        self.assertEqual(s.curl_ok(API + "/%s/count" % cid), 3)
        res = s.curl_ok(API + "/%s/query" % cid, "POST", {
            "query_embeddings": [[0.1, 0.9, 0.0]], "n_results": 2,
            "include": ["documents", "metadatas", "distances"]})
        self.assertEqual(res["ids"], [["b", "a"]])
        self.assertEqual(res["documents"], [["beta", "alpha"]])
        self.assertEqual(res["metadatas"][0][0], {"n": 2})
        names = [c["name"] for c in s.curl_ok(API)]
        self.assertIn("e2e-docs", names)

    # (4)
    def test_sigkill_chroma_restarts_with_backoff(self):
        s = self.stack()
        s.wait_up()
        nginx_started = s.ev("nginx", "started")
        pid = cilib.wait_until(s.chroma_pid, 10, what="chroma's pid")
        start = _starttime(pid)
        mark = s.init.mark()
        os.kill(pid, signal.SIGKILL)
        ex = s.ev("chromadb", "exited", 30, mark)
        self.assertIn("SIGKILL", ex.get("msg", ""))
        self.assertRegex(ex.get("msg", ""), r"restarting in \d+ms")
        st = s.ev("chromadb", "started", 30, mark)
        self.assertGreater(st["mono_us"], ex["mono_us"])
        # Docker's backoff: the first restart waits 100 ms.
        self.assertGreaterEqual(st["mono_us"] - ex["mono_us"], 90_000)
        hl = s.ev("chromadb", "healthy", START_TIMEOUT, mark)
        self.assertGreater(hl["mono_us"], st["mono_us"])
        self.assertFalse(_alive(pid, start))
        new = s.chroma_pid()
        self.assertIsNotNone(new)
        self.assertNotEqual((new, _starttime(new)), (pid, start))
        code, body = s.curl("/api/v2/heartbeat")
        self.assertEqual(code, 200, body)
        # depends_on.restart is not set for nginx in compose/init.json: nginx kept running.
        for e in s.init.events()[mark:]:
            if e.get("service") == "nginx":
                self.assertNotIn(e.get("event"), ("stopping", "stopped", "exited", "started"),
                                 "nginx was restarted: %s" % e)
        self.assertEqual(nginx_started, s.ev("nginx", "started"))

    # (5)
    def _sigterm_clean_and_persistent(self, pid1):
        s = self.stack(pid1)
        s.wait_up()
        s.curl_ok(API, "POST", {"name": "kept-across-restarts"})
        col = [c for c in s.curl_ok(API) if c["name"] == "kept-across-restarts"][0]
        cid = col["id"]
        s.curl_ok(API + "/%s/add" % cid, "POST",
                  {"ids": ["x"], "embeddings": [[0.5, 0.5]], "documents": ["persisted"]})
        # Every process of the stack (nginx workers included), with its start time.
        procs = [(p, _starttime(p)) for p in cilib.descendants(s.init.init_pid())]
        self.assertGreaterEqual(len(procs), 3, procs)
        t0 = time.monotonic()
        s.init.signal(signal.SIGTERM)
        rc = s.init.wait(SHUTDOWN_BUDGET + 5)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, s.init.stderr_text()[-3000:])
        self.assertLess(took, SHUTDOWN_BUDGET, "shutdown took %.2fs" % took)
        evs = s.init.events()
        stopped = [e["service"] for e in evs if e.get("event") == "stopped"]
        self.assertEqual(stopped, ["nginx", "chromadb"], "reverse order")
        # No process left: none of the stack's processes, nothing mentioning our directory.
        left = [p for p, st in procs if _alive(p, st)]
        self.assertEqual(left, [], "left behind: %s" % [(p, cilib.cmdline(p)) for p in left])
        self.assertEqual(cilib.find_tagged(self.root), [])
        self.assertEqual(cilib.zombies(token=self.root), [])
        # Again on the same data: the collection and its record are still there.
        s2 = self.stack(pid1)
        s2.wait_up()
        # The certificate was kept too (curl_ok below still trusts the same file).
        s2.init.wait_output(lambda l: "cert-gen" in l and "kept:" in l, 10)
        cols = {c["name"]: c["id"] for c in s2.curl_ok(API)}
        self.assertIn("kept-across-restarts", cols)
        got = s2.curl_ok(API + "/%s/get" % cols["kept-across-restarts"], "POST",
                         {"ids": ["x"], "include": ["documents"]})
        self.assertEqual(got["documents"], ["persisted"])
        s2.init.signal(signal.SIGTERM)
        self.assertEqual(s2.init.wait(SHUTDOWN_BUDGET + 5), 0)

    def test_sigterm_clean_exit_data_persisted_pid1(self):
        self._sigterm_clean_and_persistent(pid1=True)

    def test_sigterm_clean_exit_data_persisted_not_pid1(self):
        """As compose/quickstart runs it: a plain process (child subreaper). Leftovers
        would survive the init here (no namespace to take them down)."""
        self._sigterm_clean_and_persistent(pid1=False)


class QuickstartTest(unittest.TestCase):
    """compose/quickstart itself (the Dockerfile mirrors its steps): packages present (no apt
    run), Chroma already in the npm cache, a fresh build dir, its own ./local and ports."""

    def test_quickstart_serves_https_and_stops_on_ctrl_c(self):
        root = tempfile.mkdtemp(prefix="ci-e2e-qs-")
        self.addCleanup(shutil.rmtree, root, True)
        self.addCleanup(cilib.kill_tagged, root)
        https_port, chroma_port = cilib.free_port(), cilib.free_port()
        cache = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(CHROMA_BIN))))
        env = {"CHROMA_INIT_LOCAL": os.path.join(root, "local"),
               "CHROMA_INIT_BUILD": os.path.join(root, "build"), "CHROMA_INIT_CACHE": cache,
               "CHROMA_HTTPS_PORT": https_port, "CHROMA_PORT": chroma_port,
               "ANONYMIZED_TELEMETRY": "FALSE", "CHROMA_INIT_SKIP_APT": "1",
               # what an interactive shell has: not those of the test environment
               "CHROMA_DATA": None, "CHROMA_CERTS": None, "CHROMA_INIT_ETC": None,
               "CHROMA_INIT_STATE": None, "CHROMA_DOMAIN": None}
        init = cilib.Init(None, [], pid1=False, env=env,
                          binary=os.path.join(SRC, "compose", "quickstart"))
        self.addCleanup(init.close)
        url = "https://localhost:%d" % https_port
        ca = os.path.join(root, "local", "certs", "servercert.pem")
        init.wait_output(lambda l: url in l, 120, stream="err")
        init.wait_output(lambda l: ca in l, 5, stream="err")
        init.wait_event(lambda e: e.get("service") == "nginx" and e.get("event") == "started",
                        START_TIMEOUT)

        def heartbeat():
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--cacert", ca, url + "/api/v2/heartbeat"],
                               capture_output=True, text=True)
            return r.stdout == "200"

        cilib.wait_until(heartbeat, 30, what="HTTPS 200 from the quick start")
        with open(os.path.join(root, "local", "etc", "nginx.conf")) as f:
            conf = f.read()
        self.assertIn("listen %d ssl;" % https_port, conf)
        self.assertNotIn("@", conf.replace("$", ""))
        procs = [(p, _starttime(p)) for p in cilib.descendants(init.proc.pid)]
        t0 = time.monotonic()
        init.proc.send_signal(signal.SIGINT)  # Ctrl-C (the script exec'd chroma-init)
        self.assertEqual(init.wait(SHUTDOWN_BUDGET + 5), 0, init.stderr_text()[-3000:])
        self.assertLess(time.monotonic() - t0, SHUTDOWN_BUDGET)
        left = [p for p, st in procs if _alive(p, st)]
        self.assertEqual(left, [], [(p, cilib.cmdline(p)) for p in left])
        self.assertEqual(cilib.find_tagged(root), [])


class DeploymentFilesTest(unittest.TestCase):
    """There is no Docker engine in CI: the Dockerfile must keep the quick start's steps
    (which QuickstartTest runs), and Kubernetes' grace period must cover shutdown_timeout."""

    def read(self, *path):
        with open(os.path.join(SRC, *path)) as f:
            return f.read()

    def test_dockerfile_mirrors_quickstart(self):
        df, qs = self.read("Dockerfile"), self.read("compose", "quickstart")
        for pin in ("chromadb@3.0.6", "chromadb-js-bindings-linux-x64-gnu@1.0.1", "--save-exact",
                    "nginx-light", "libuv1-dev", "libjansson-dev", "libssl-dev",
                    "compose/render-nginx-conf"):
            self.assertIn(pin, df, pin)
            self.assertIn(pin.replace("compose/", ""), qs, pin)
        self.assertIn("FROM debian:12 AS build", df)
        self.assertIn("node:20-bookworm-slim", df)
        self.assertIn("render-nginx-conf /out/nginx.conf /certs 8443 8000 /run/chroma-init", df)
        for line in ('ENTRYPOINT ["chroma-init", "--config", "/etc/chroma-init/init.json"]',
                     'CMD ["chroma-init", "health"]', "STOPSIGNAL SIGTERM",
                     "VOLUME /data /certs", "EXPOSE 8443",
                     "COPY compose/init.json /etc/chroma-init/init.json",
                     "COPY --from=build /out/nginx.conf /etc/chroma-init/nginx.conf"):
            self.assertIn(line, df, line)
        # The Docker paths are compose/init.json's defaults.
        init = self.read("compose", "init.json")
        for d in ("${CHROMA_DATA:-/data}", "${CHROMA_CERTS:-/certs}",
                  "${CHROMA_INIT_ETC:-/etc/chroma-init}", "${CHROMA_INIT_STATE:-/run/chroma-init}",
                  "${CHROMA_PORT:-8000}"):
            self.assertIn(d, init, d)

    def test_kubernetes_grace_period_covers_shutdown_timeout(self):
        k8s = self.read("compose", "kubernetes.yaml")
        with open(INIT_JSON) as f:
            budget = json.load(f)["shutdown_timeout"]
        self.assertRegex(budget, r"^\d+s$")
        import re
        grace = int(re.search(r"terminationGracePeriodSeconds:\s*(\d+)", k8s).group(1))
        self.assertGreater(grace, int(budget[:-1]))
        self.assertEqual(k8s.count('command: ["chroma-init", "health"]'), 3)
        self.assertIn("volumeClaimTemplates", k8s)
        for m in ("mountPath: /data", "mountPath: /certs", "kind: StatefulSet", "kind: Service"):
            self.assertIn(m, k8s)


if __name__ == "__main__":
    unittest.main(verbosity=2)
