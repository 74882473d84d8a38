#!/usr/bin/env python3
"""chroma-init certgen from the outside: exit codes and messages, the openssl
CLI as a second opinion, a real nginx serving the pair to curl, and a kill -9
loop that checks a key never shows up without its matching certificate."""
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

BIN = os.environ.get("CI_BINARY", "build/chroma-init")
KEY_TYPES = ["rsa:2048", "rsa:4096", "ec:P-256", "ec:P-384", "ed25519"]


def certgen(*args, timeout=60):
    return subprocess.run([BIN, "certgen", *args], capture_output=True, text=True,
                          timeout=timeout)


def openssl(*args, input=None):
    r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30,
                       input=input)
    if r.returncode != 0:
        raise AssertionError(f"openssl {' '.join(args)}: {r.stderr}")
    return r.stdout


def read(path):
    with open(path, "rb") as f:
        return f.read()


def pair_ok(cert, key):
    """True when cert and key both parse and the key matches the cert (OpenSSL
    library through Python's ssl module)."""
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return True
    except (ssl.SSLError, OSError):
        return False


def cert_parses(cert):
    try:
        ssl._ssl._test_decode_cert(cert)
        return True
    except (ssl.SSLError, OSError):
        return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def stop_nginx(proc):
    """SIGTERM to the master (it stops its workers); SIGKILL to master and
    workers by pid if it does not finish in time."""
    workers = children(proc.pid)
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    for w in workers:
        try:
            os.kill(w, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if proc.stderr:
        proc.stderr.close()


class CertgenCli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="ci-certgen-cli-")
        self.cert = os.path.join(self.dir, "certs", "servercert.pem")
        self.key = os.path.join(self.dir, "certs", "serverkey.pem")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def gen(self, *extra, domain="localhost,127.0.0.1"):
        args = ["--cert", self.cert, "--key", self.key]
        if domain:
            args += ["--domain", domain]
        r = certgen(*args, *extra)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertEqual(r.stdout.count("\n"), 1, r.stdout)
        return r.stdout.strip()

    def test_bad_usage_exits_2_and_touches_nothing(self):
        base = ["--cert", self.cert, "--key", self.key]
        cases = [
            (base + ["--key-type", "rsa:1024"], "unknown key type"),
            (base + ["--days", "0"], "invalid --days"),
            (base + ["--days", "36501"], "invalid --days"),
            (base + ["--days", "x"], "invalid --days"),
            (base + ["--domain", ""], "empty domain"),
            (base + ["--domain", "a,,b"], "empty domain"),
            (base + ["--domain", "a,"], "empty domain"),
            (base + ["--domain", "bad name"], "invalid domain"),
            (base + ["--subject", "O=Chroma"], "invalid subject"),
            (base + ["--subject", "/C=USA"], "invalid subject"),
            (base + ["--renew-before", "soon"], "invalid --renew-before"),
            (base + ["--bogus"], "unknown option --bogus"),
            (base + ["--days"], "--days needs a value"),
            (["--key", self.key], "--cert is required"),
            (["--cert", self.cert], "--key is required"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                r = certgen(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
                lines = r.stderr.strip().split("\n")
                self.assertEqual(len(lines), 1, r.stderr)
                self.assertTrue(lines[0].startswith("chroma-init certgen: "), r.stderr)
                self.assertIn(msg, lines[0])
                self.assertFalse(os.path.exists(os.path.dirname(self.cert)))

    def test_runtime_failure_exits_1(self):
        plain = os.path.join(self.dir, "plain")
        with open(plain, "w") as f:
            f.write("x")
        r = certgen("--cert", plain + "/c.pem", "--key", plain + "/k.pem")
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr.strip(),
                         f"chroma-init certgen: unable to write {plain}/c.pem: not a directory")

    def test_help(self):
        r = certgen("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--key-type", r.stdout)

    def test_every_key_type_second_opinion(self):
        for kt in KEY_TYPES:
            with self.subTest(key_type=kt):
                line = self.gen("--key-type", kt, "--force",
                                domain="localhost,127.0.0.1,::1,*.example.com")
                self.assertTrue(line.startswith(f"generated: {kt}, serial "), line)
                self.assertIn("covers localhost, 127.0.0.1, ::1, *.example.com", line)
                text = openssl("x509", "-in", self.cert, "-noout", "-text")
                self.assertIn("DNS:localhost", text)
                self.assertIn("DNS:*.example.com", text)
                self.assertIn("IP Address:127.0.0.1", text)
                self.assertIn("IP Address:0:0:0:0:0:0:0:1", text)
                self.assertRegex(text, r"Basic Constraints: critical\s+CA:FALSE")
                if kt.startswith("rsa"):
                    self.assertRegex(text, r"Key Usage: critical\s+Digital Signature, "
                                           r"Key Encipherment\n")
                    self.assertIn(f"Public-Key: ({kt[4:]} bit)", text)
                else:
                    self.assertRegex(text, r"Key Usage: critical\s+Digital Signature\n")
                self.assertRegex(text, r"Extended Key Usage: \s*TLS Web Server Authentication")
                self.assertIn("Subject Key Identifier", text)
                self.assertIn("Subject: O = Chroma, C = US, CN = localhost", text)
                if kt == "ed25519":
                    self.assertIn("Signature Algorithm: ED25519", text)
                elif kt.startswith("rsa"):
                    self.assertIn("Signature Algorithm: sha256WithRSAEncryption", text)
                else:
                    self.assertIn("Signature Algorithm: ecdsa-with-SHA256", text)
                serial = openssl("x509", "-in", self.cert, "-noout", "-serial").strip()
                serial = serial.split("=")[1]
                self.assertEqual(len(serial), 32)
                self.assertGreaterEqual(int(serial[0], 16), 8)  # exactly 128 bits, positive
                self.assertIn(serial, line)
                # key matches cert: same public key, and Python's ssl agrees
                self.assertEqual(openssl("x509", "-in", self.cert, "-noout", "-pubkey"),
                                 openssl("pkey", "-in", self.key, "-pubout"))
                self.assertTrue(pair_ok(self.cert, self.key))
                self.assertEqual(os.stat(self.key).st_mode & 0o7777, 0o600)
                self.assertEqual(os.stat(self.cert).st_mode & 0o7777, 0o644)
                # validity window
                nb = ssl.cert_time_to_seconds(
                    openssl("x509", "-in", self.cert, "-noout", "-startdate").strip()
                    .split("=")[1])
                na = ssl.cert_time_to_seconds(
                    openssl("x509", "-in", self.cert, "-noout", "-enddate").strip()
                    .split("=")[1])
                now = time.time()
                self.assertAlmostEqual(nb, now - 300, delta=30)
                self.assertAlmostEqual(na, now + 365 * 86400, delta=30)
                # the cert verifies against itself by name and IP
                openssl("verify", "-CAfile", self.cert, "-purpose", "sslserver",
                        "-verify_hostname", "localhost", self.cert)
                openssl("verify", "-CAfile", self.cert, "-verify_ip", "127.0.0.1", self.cert)

    def test_idempotence_and_replacement(self):
        first = self.gen("--key-type", "ec:P-256")
        self.assertTrue(first.startswith("generated: ec:P-256"), first)
        self.assertNotIn("replaced", first)
        c, k = read(self.cert), read(self.key)
        for _ in range(3):
            line = self.gen("--key-type", "ec:P-256")
            self.assertRegex(line, r"^kept: valid until \d{4}-\d\d-\d\d, covers localhost, "
                                   r"127\.0\.0\.1$")
            self.assertEqual(read(self.cert), c)
            self.assertEqual(read(self.key), k)
        # --force
        line = self.gen("--key-type", "ec:P-256", "--force")
        self.assertTrue(line.endswith("(replaced: forced)"), line)
        self.assertNotEqual(read(self.cert), c)
        self.assertNotEqual(read(self.key), k)
        # a changed domain
        c = read(self.cert)
        line = self.gen("--key-type", "ec:P-256", domain="localhost,chroma.example.com")
        self.assertIn("(replaced: certificate does not cover chroma.example.com)", line)
        self.assertNotEqual(read(self.cert), c)
        # expiring: 1 day left, renew_before 720h
        self.gen("--key-type", "ec:P-256", "--days", "1", "--force")
        c = read(self.cert)
        self.assertTrue(self.gen("--key-type", "ec:P-256").startswith("kept:"))
        line = self.gen("--key-type", "ec:P-256", "--renew-before", "720h")
        self.assertIn("within renew_before", line)
        self.assertNotEqual(read(self.cert), c)
        self.assertTrue(pair_ok(self.cert, self.key))
        self.assertTrue(self.gen("--renew-before", "720h").startswith("kept:"))
        # a malformed cert is replaced, and the line says so
        os.unlink(self.cert)
        with open(self.cert, "w") as f:
            f.write("garbage\n")
        line = self.gen()
        self.assertIn(f"(replaced: certificate at {self.cert} is malformed)", line)
        self.assertTrue(pair_ok(self.cert, self.key))

    def test_nginx_serves_the_pair_and_curl_verifies_by_name(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.path.exists(nginx) or not shutil.which("curl"):
            self.skipTest("nginx or curl missing")
        self.gen(domain="localhost,127.0.0.1")
        port = free_port()
        prefix = os.path.join(self.dir, "nginx")
        os.makedirs(os.path.join(prefix, "logs"))
        conf = os.path.join(prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"""
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {self.cert};
        ssl_certificate_key {self.key};
        location / {{ return 200 "chroma over tls\\n"; }}
    }}
}}
""")
        proc = subprocess.Popen([nginx, "-p", prefix, "-e", f"{prefix}/logs/error.log",
                                 "-c", conf, "-g", "daemon off;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while True:
                self.assertIsNone(proc.poll(), "nginx exited: " +
                                  (proc.stderr.read().decode() if proc.stderr else ""))
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    self.assertLess(time.monotonic(), deadline, "nginx did not listen")
                    time.sleep(0.02)
            for url, extra in [(f"https://localhost:{port}/",
                                ["--resolve", f"localhost:{port}:127.0.0.1"]),
                               (f"https://127.0.0.1:{port}/", [])]:
                r = subprocess.run(["curl", "-sS", "--fail", "--max-time", "10", "--cacert",
                                    self.cert, *extra, url],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(r.returncode, 0, f"{url}: {r.stderr}")
                self.assertEqual(r.stdout, "chroma over tls\n")
            # a name the cert does not cover fails verification
            r = subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", self.cert,
                                "--resolve", f"other.example:{port}:127.0.0.1",
                                f"https://other.example:{port}/"],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0)
        finally:
            stop_nginx(proc)

    def check_invariant(self, allow_cert_alone):
        c_exists = os.path.lexists(self.cert)
        k_exists = os.path.lexists(self.key)
        if k_exists:
            self.assertTrue(c_exists, "a key without its certificate")
            self.assertTrue(pair_ok(self.cert, self.key), "cert and key do not match")
            self.assertEqual(os.stat(self.key).st_mode & 0o7777, 0o600)
        elif c_exists:
            self.assertTrue(allow_cert_alone, "a certificate without its key")
            self.assertTrue(cert_parses(self.cert), "a half-written certificate")

    def test_kill_9_never_leaves_a_broken_pair(self):
        kt = "ec:P-256"
        args = [BIN, "certgen", "--cert", self.cert, "--key", self.key, "--key-type", kt,
                "--domain", "localhost,127.0.0.1", "--force"]
        rng = random.Random(os.environ.get("CI_SEED", "certgen"))
        killed = 0
        tries = 240
        for i in range(tries):
            fresh = i % 6 == 0  # sometimes from an empty directory: first-time creation
            if fresh:
                shutil.rmtree(os.path.dirname(self.cert), ignore_errors=True)
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.030))
            p.send_signal(signal.SIGKILL)
            rc = p.wait(timeout=30)
            if rc == -signal.SIGKILL:
                killed += 1
            else:
                self.assertEqual(rc, 0)
            # from an empty directory the cert link may exist alone (never the key)
            self.check_invariant(allow_cert_alone=True)
        print(f"kill -9 loop: {killed} of {tries} runs killed", file=sys.stderr)
        self.assertGreater(killed, 20, "too few runs were killed mid-way")
        # a pair that existed before a killed --force run is still there and valid
        self.gen("--key-type", kt)
        for _ in range(60):
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.030))
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            self.check_invariant(allow_cert_alone=False)
            self.assertTrue(os.path.lexists(self.key))
        # the next normal run succeeds, leaves a valid pair and cleans the leftovers
        line = self.gen("--key-type", kt)
        self.assertRegex(line, r"^(kept|generated):")
        self.assertTrue(pair_ok(self.cert, self.key))
        names = sorted(os.listdir(os.path.dirname(self.cert)))
        self.assertEqual(len(names), 4, names)
        self.assertIn(".certgen-servercert.pem.current", names)
        self.assertIn("servercert.pem", names)
        self.assertIn("serverkey.pem", names)

    def test_crash_at_every_step(self):
        """CI_CERTGEN_CRASH_AT=<point> makes certgen SIGKILL itself at that
        step: a deterministic version of the kill -9 loop."""
        d = os.path.dirname(self.cert)
        points = ["half:key", "half:cert", "gen-key", "gen-cert", "gen-dir", "preserved",
                  "current-direct", "link:.certgen-servercert.pem.current",
                  "link:servercert.pem", "link:serverkey.pem", "cert-link", "key-link",
                  "swapped"]
        expected = {
            "fresh": set(points) - {"preserved"},
            "steady": {"half:key", "half:cert", "gen-key", "gen-cert", "gen-dir",
                       "link:.certgen-servercert.pem.current", "swapped"},
            "regular": set(points) - {"current-direct"},
        }
        base = ["--cert", self.cert, "--key", self.key, "--key-type", "ec:P-256"]
        for scenario, want in expected.items():
            reached = set()
            for point in points:
                with self.subTest(scenario=scenario, point=point):
                    shutil.rmtree(d, ignore_errors=True)
                    old = None
                    if scenario == "steady":
                        self.gen("--key-type", "ec:P-256")
                    elif scenario == "regular":
                        os.makedirs(d)
                        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
                                "/O=Chroma/C=US", "-addext", "subjectAltName=DNS:localhost",
                                "-keyout", self.key, "-out", self.cert)
                    if scenario != "fresh":
                        old = read(self.cert)
                    env = dict(os.environ, CI_CERTGEN_CRASH_AT=point)
                    r = subprocess.run([BIN, "certgen", *base, "--force"], env=env,
                                       capture_output=True, timeout=60)
                    if r.returncode == -signal.SIGKILL:
                        reached.add(point)
                    else:
                        self.assertEqual(r.returncode, 0, r.stderr)
                    self.check_invariant(allow_cert_alone=scenario == "fresh")
                    if old is not None:
                        self.assertTrue(os.path.exists(self.key), "the old pair disappeared")
                    r = certgen(*base)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertTrue(pair_ok(self.cert, self.key))
                    names = os.listdir(d)
                    self.assertFalse([n for n in names if ".link-" in n or ".tmp-" in n],
                                     names)
                    gens = [n for n in names if n.startswith(".certgen-servercert.pem.")
                            and n != ".certgen-servercert.pem.current"]
                    self.assertLessEqual(len(gens), 1, names)
            self.assertEqual(reached, want, scenario)

    def test_kill_9_two_directories_recovers(self):
        cert = os.path.join(self.dir, "c", "cert.pem")
        key = os.path.join(self.dir, "k", "key.pem")
        args = [BIN, "certgen", "--cert", cert, "--key", key, "--key-type", "ec:P-256",
                "--force"]
        rng = random.Random("two-dirs")
        subprocess.run(args[:-1], check=True, capture_output=True)
        for _ in range(60):
            p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.030))
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
            # each file is whole (renamed into place), possibly from different runs
            self.assertTrue(cert_parses(cert))
            self.assertEqual(os.stat(key).st_mode & 0o7777, 0o600)
        r = certgen("--cert", cert, "--key", key, "--key-type", "ec:P-256")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(pair_ok(cert, key))
        self.assertEqual(os.listdir(os.path.dirname(cert)), ["cert.pem"])
        self.assertEqual(os.listdir(os.path.dirname(key)), ["key.pem"])
        # deterministic crashes: the old files stay whole; after key-renamed the
        # pair mismatches and the next run replaces it
        for point in ["half:key", "half:cert", "key-tmp", "cert-tmp", "key-renamed"]:
            with self.subTest(point=point):
                old_c, old_k = read(cert), read(key)
                env = dict(os.environ, CI_CERTGEN_CRASH_AT=point)
                r = subprocess.run(args, env=env, capture_output=True, timeout=60)
                self.assertEqual(r.returncode, -signal.SIGKILL)
                self.assertEqual(read(cert), old_c)
                if point == "key-renamed":
                    self.assertNotEqual(read(key), old_k)
                    self.assertFalse(pair_ok(cert, key))
                else:
                    self.assertEqual(read(key), old_k)
                r = certgen("--cert", cert, "--key", key, "--key-type", "ec:P-256")
                self.assertEqual(r.returncode, 0, r.stderr)
                if point == "key-renamed":
                    self.assertIn("does not match the certificate", r.stdout)
                self.assertTrue(pair_ok(cert, key))
                self.assertEqual(os.listdir(os.path.dirname(cert)), ["cert.pem"])
                self.assertEqual(os.listdir(os.path.dirname(key)), ["key.pem"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
