"""OpenSSL lives in chroma-init-tls.so, loaded on first use: the init as PID 1
maps libssl/libcrypto only once it probes https://; certgen and https probes
fail clearly when the module cannot be loaded."""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cilib import (CI_BINARY, NGINX, Init, children, ev, free_port, helper,  # noqa: E402
                   nginx_tls_conf, tmpdir, wait_until)

MODULE = "chroma-init-tls.so"

def maps(pid):
    with open("/proc/%d/maps" % pid) as f:
        return f.read()


def openssl_mapped(pid):
    m = maps(pid)
    return [lib for lib in ("libssl", "libcrypto", MODULE) if lib in m]


def https_hc(port, **kw):
    hc = {"test": ["HTTP", "https://127.0.0.1:%d/" % port], "interval": "200ms",
          "timeout": "2s", "retries": 1, "start_period": "0s"}
    hc.update(kw)
    return hc


class TlsModule(unittest.TestCase):
    def test_binary_does_not_link_openssl(self):
        out = subprocess.run(["ldd", CI_BINARY], capture_output=True, text=True,
                             timeout=10).stdout
        self.assertNotIn("libssl", out)
        self.assertNotIn("libcrypto", out)
        self.assertTrue(os.path.exists(os.path.join(os.path.dirname(CI_BINARY), MODULE)))

    def test_dockerfile_installs_the_module_beside_the_binary(self):
        with open(os.path.join(os.environ.get("CI_SOURCE_DIR", "."), "Dockerfile")) as f:
            df = f.read()
        self.assertIn("/usr/local/bin/chroma-init\n", df)
        self.assertIn("/build/%s /usr/local/lib/chroma-init/%s\n" % (MODULE, MODULE), df)

    def test_pid1_with_a_command_maps_no_openssl(self):
        with Init(None, ["--", *helper("sleep", "30")], log_format=None) as init:
            pid = init.init_pid()
            wait_until(lambda: children(pid), 5, what="the child")
            self.assertEqual(openssl_mapped(pid), [], maps(pid))
            init.signal(signal.SIGTERM)
            self.assertEqual(init.wait(10), 128 + signal.SIGTERM)

    @unittest.skipUnless(os.access(NGINX, os.X_OK), "nginx is not installed")
    def test_https_probe_loads_the_module(self):
        with tmpdir() as d:
            cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
            # The certgen CLI: a process of its own, through the module.
            r = subprocess.run([CI_BINARY, "certgen", "--cert", cert, "--key", key, "--domain",
                                "127.0.0.1", "--key-type", "ec:P-256"], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            port = free_port()
            conf = nginx_tls_conf(d, port, cert, key)
            cfg = {"state_dir": os.path.join(d, "state"), "services": {
                "nginx": {"command": [NGINX, "-c", conf, "-g", "daemon off;"],
                          "stop_signal": "SIGQUIT",
                          "healthcheck": https_hc(port, ca=cert)}}}
            with Init(cfg) as init:
                pid = init.init_pid()
                e = init.wait_event(ev("healthy", "nginx"), 20)
                self.assertEqual(openssl_mapped(pid), ["libssl", "libcrypto", MODULE],
                                 e.get("msg"))
                init.signal(signal.SIGTERM)
                self.assertEqual(init.wait(20), 0)

    def test_missing_module_fails_certgen_clearly(self):
        with tmpdir() as d:
            missing = os.path.join(d, "nope", MODULE)
            r = subprocess.run([CI_BINARY, "certgen", "--cert", os.path.join(d, "c.pem"),
                                "--key", os.path.join(d, "k.pem")], capture_output=True,
                               text=True, timeout=30,
                               env=dict(os.environ, CHROMA_INIT_TLS_MODULE=missing))
            self.assertEqual(r.returncode, 1)
            self.assertIn("chroma-init certgen: unable to load %s: %s" % (MODULE, missing),
                          r.stderr)
            self.assertIn("No such file or directory", r.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "c.pem")))

    def test_missing_module_fails_the_https_probe(self):
        with tmpdir() as d:
            missing = os.path.join(d, "nope", MODULE)
            port = free_port()
            cfg = {"state_dir": os.path.join(d, "state"), "services": {
                "web": {"command": helper("serve-http", os.path.join(d, "port"), "--port", port),
                        "healthcheck": https_hc(port)}}}
            with Init(cfg, env={"CHROMA_INIT_TLS_MODULE": missing}) as init:
                e = init.wait_event(ev("unhealthy", "web"), 20)
                self.assertIn("TLS: unable to load %s: %s" % (MODULE, missing), e["msg"])
                self.assertEqual(openssl_mapped(init.init_pid()), [])
                init.signal(signal.SIGTERM)
                self.assertEqual(init.wait(20), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
