"""The certgen service inside the init, and hot reload of a real nginx when
the pair is regenerated (issue 6)."""

import os
import signal
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cilib import (CI_BINARY, NGINX, Init, ev, free_port, helper, nginx_tls_conf,  # noqa: E402
                   tmpdir, wait_until)



def served_serial(port):
    """Serial of the certificate nginx serves now, or None."""
    try:
        s = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                            "-servername", "localhost"], input=b"", capture_output=True,
                           timeout=5)
        x = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=s.stdout,
                           capture_output=True, timeout=5)
    except subprocess.TimeoutExpired:
        return None
    out = x.stdout.decode().strip()
    return out.split("=", 1)[1] if out.startswith("serial=") else None


def file_serial(path):
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", path],
                         capture_output=True, check=True).stdout.decode().strip()
    return out.split("=", 1)[1]


@unittest.skipUnless(os.access(NGINX, os.X_OK), "nginx is not installed (tests/run installs it)")
class CertgenService(unittest.TestCase):
    def test_generate_start_nginx_then_reload_on_renewal(self):
        with tmpdir() as d:
            port = free_port()
            cert = os.path.join(d, "certs", "servercert.pem")
            key = os.path.join(d, "certs", "serverkey.pem")
            conf = nginx_tls_conf(d, port, cert, key)
            os.makedirs(os.path.dirname(cert))
            cfg = {"state_dir": os.path.join(d, "state"), "services": {
                "cert-gen": {"certgen": {"cert": cert, "key": key, "domain": "localhost,127.0.0.1",
                                         "key_type": "ec:P-256", "renew_before": "720h"}},
                "nginx": {"command": [NGINX, "-c", conf, "-g", "daemon off;"],
                          "depends_on": {"cert-gen": {
                              "condition": "service_completed_successfully"}},
                          "wait_for": {"files": [cert, key], "timeout": "10s"},
                          "reload": {"watch": [cert, key], "signal": "SIGHUP"},
                          "stop_signal": "SIGQUIT", "restart": "unless-stopped"}}}
            with Init(cfg) as init:
                init.wait_event(ev("exited", "cert-gen"), 30)
                # Its output and its exit event travel apart (pipe, SIGCHLD).
                init.wait_output(lambda l: "cert-gen" in l and "generated" in l, 10)
                init.wait_event(ev("started", "nginx"), 10)
                first = file_serial(cert)
                wait_until(lambda: served_serial(port) == first, 20, what="nginx serving the cert")

                mark = init.mark()
                r = subprocess.run([CI_BINARY, "certgen", "--cert", cert, "--key", key,
                                    "--domain", "localhost,127.0.0.1", "--key-type", "ec:P-256",
                                    "--force"], capture_output=True, timeout=30)
                self.assertEqual(r.returncode, 0, r.stderr)
                second = file_serial(cert)
                self.assertNotEqual(first, second)
                init.wait_event(ev("reload", "nginx"), 10, since=mark)
                wait_until(lambda: served_serial(port) == second, 20,
                           what="nginx serving the new cert")
                # The cert + key pair replaced together reloads once.
                reloads = [e for e in init.events()[mark:] if ev("reload", "nginx")(e)]
                self.assertEqual(len(reloads), 1)

                init.signal(signal.SIGTERM)
                self.assertEqual(init.wait(20), 0)

    def test_renewal_on_schedule_reloads_the_dependent(self):
        # days 1 with renew_before 23h59m57s: the pair is due for renewal
        # about 3 s after it is made; the init schedules the check for then.
        with tmpdir() as d:
            cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            rec = os.path.join(d, "signals")
            cfg = {"state_dir": os.path.join(d, "state"), "services": {
                "cert-gen": {"certgen": {"cert": cert, "key": key, "key_type": "ec:P-256",
                                         "days": 1, "renew_before": "23h59m57s"}},
                "app": {"command": helper("record-signals", rec),
                        "depends_on": {"cert-gen": {
                            "condition": "service_completed_successfully"}},
                        "reload": {"watch": [cert, key]}}}}
            with Init(cfg) as init:
                init.wait_event(ev("started", "app"), 30)
                first = file_serial(cert)
                init.wait_event(ev("renew-check", "cert-gen"), 20)
                init.wait_event(ev("reload", "app"), 20)
                wait_until(lambda: "SIGHUP" in open(rec).read().split(), 10, what="SIGHUP")
                self.assertNotEqual(file_serial(cert), first)
                init.signal(signal.SIGTERM)
                self.assertEqual(init.wait(20), 0)

    def test_failed_certgen_keeps_nginx_from_starting(self):
        with tmpdir() as d:
            blocker = os.path.join(d, "not-a-dir")
            open(blocker, "w").close()
            cfg = {"state_dir": os.path.join(d, "state"), "services": {
                "cert-gen": {"certgen": {"cert": os.path.join(blocker, "c.pem"),
                                         "key": os.path.join(blocker, "k.pem")}},
                "nginx": {"command": ["true"],
                          "depends_on": {"cert-gen": {
                              "condition": "service_completed_successfully"}}}}}
            with Init(cfg) as init:
                self.assertEqual(init.wait(30), 1)
                self.assertFalse(any(ev("started", "nginx")(e) for e in init.events()))
                self.assertIn("dependency cert-gen exited with status", init.stderr_text())


if __name__ == "__main__":
    unittest.main(verbosity=2)
