"""Adversarial review of the process core: each test reproduces one defect.

Every test here failed on the commit it was written against (see the
review report); each names the faulty function in its docstring."""

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cilib import (ev, CI_BINARY, CI_HELPER, Init, find_tagged, helper, kill_pids,  # noqa: E402
                   kill_tagged, new_tag, tmpdir, wait_until)


class ShutdownNeverHangs(unittest.TestCase):
    def test_sigterm_during_certgen_renewal_run(self):
        """ci_sup_on_exit: the renewal_run branch returns without
        check_done(), so a SIGTERM that stops a renewal run in flight never
        reaches final_phase(); deadline_fire() does not move on either. The
        init hangs until the engine's SIGKILL."""
        with tmpdir() as d:
            cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            tag = new_tag()
            # days 1 with renew_before 48h: always due, a renewal run every
            # second; rsa:4096 makes each run last long enough to be caught.
            cfg = {"state_dir": os.path.join(d, "state"), "shutdown_timeout": "2s",
                   "services": {
                       "cert-gen": {"certgen": {"cert": cert, "key": key, "key_type": "rsa:4096",
                                                "days": 1, "renew_before": "48h"}},
                       "app": {"command": helper("sleep", 60, tag=tag),
                               "depends_on": {"cert-gen": {
                                   "condition": "service_completed_successfully"}}}}}
            try:
                with Init(cfg) as init:
                    init.wait_event(ev("started", "app"), 60)
                    caught = False
                    for _ in range(10):
                        mark = init.mark()
                        init.wait_event(ev("renew-check", "cert-gen"), 20, since=mark)
                        # Still running? (the renewal run may finish first)
                        time.sleep(0.05)
                        if not any(ev("exited", "cert-gen")(e) for e in init.events()[mark:]):
                            caught = True
                            break
                    self.assertTrue(caught, "no renewal run caught in flight")
                    init.signal(signal.SIGTERM)
                    init.wait_event(ev("stopping", "cert-gen"), 5)
                    # 2 s shutdown_timeout + 2 s leftovers + slack.
                    self.assertEqual(init.wait(8), 0)
            finally:
                kill_tagged(tag)


class HealthProbes(unittest.TestCase):
    def test_probe_output_held_open_by_a_detached_child(self):
        """probe_finish_cmd / probe_timeout_fire / probe_start: a CMD probe
        is finished only when its process exited AND its output pipe reached
        EOF. A probe that leaves a detached (setsid) child holding the pipe
        never finishes: its timeout is ignored once probe_pid is 0, and
        probe_start() returns without re-arming hc_timer while
        probe_running, so no probe ever runs again. The service stays
        `starting` forever (its service_healthy dependents never start)."""
        tag = new_tag()
        with tmpdir() as d:
            state = os.path.join(d, "state")
            probe = "setsid %s --tag %s sleep 30 & sleep 0.3; echo ok" % (CI_HELPER, tag)
            cfg = {"state_dir": state, "services": {
                "db": {"command": helper("sleep", 60, tag=tag),
                       "healthcheck": {"test": ["CMD-SHELL", probe], "interval": "200ms",
                                       "timeout": "1s", "retries": 1,
                                       "start_interval": "100ms"}},
                "app": {"command": helper("sleep", 60, tag=tag),
                        "depends_on": {"db": {"condition": "service_healthy"}}}}}

            def probes():
                r = subprocess.run([CI_BINARY, "ctl", "--socket", os.path.join(state, "ctl.sock"),
                                    "status", "--json"], capture_output=True, timeout=5)
                try:
                    svcs = json.loads(r.stdout)["services"]
                except (ValueError, KeyError):
                    return 0
                return len([s for s in svcs if s["name"] == "db"][0]["Health"]["Log"])
            try:
                with Init(cfg) as init:
                    init.wait_event(ev("started", "db"), 5)
                    # Each probe ends within its 1 s timeout, one every 200 ms after.
                    wait_until(lambda: probes() >= 3, 8, interval=0.2,
                               what="3 probe results (the first probe never ended)")
                    init.signal(signal.SIGTERM)
                    self.assertEqual(init.wait(15), 0)
            finally:
                kill_tagged(tag)


class Dependencies(unittest.TestCase):
    def test_depends_on_restart_restarts_the_dependent_once(self):
        """kick(): depends_on.restart compares the dependency's generation
        with dep_generation[], which only the WAITING -> spawn path updates.
        After the forced restart (svc_stop -> on_exit -> backoff_fire ->
        svc_spawn) it is still stale, so the next kick() restarts the
        dependent again, and again: an endless restart loop after a single
        restart of the dependency."""
        tag = new_tag()
        with tmpdir() as d:
            marker = os.path.join(d, "ran-once")
            db = ("if [ -e %s ]; then exec %s --tag %s sleep 60; fi; touch %s; sleep 0.3; exit 1"
                  % (marker, CI_HELPER, tag, marker))
            cfg = {"state_dir": os.path.join(d, "state"), "services": {
                "db": {"command": ["sh", "-c", db], "restart": "on-failure"},
                "app": {"command": helper("sleep", 60, tag=tag),
                        "depends_on": {"db": {"condition": "service_started", "restart": True}}}}}
            try:
                with Init(cfg) as init:
                    def nstarted(name):
                        return sum(1 for e in init.events() if ev("started", name)(e))
                    init.wait_event(lambda e: ev("started", "app")(e) and nstarted("app") >= 2, 10)
                    self.assertEqual(nstarted("db"), 2)
                    # db restarted once: app must not start a third time.
                    with self.assertRaises(TimeoutError):
                        init.wait_event(lambda e: ev("started", "app")(e) and
                                        nstarted("app") >= 3, 3)
                    init.signal(signal.SIGTERM)
                    self.assertEqual(init.wait(15), 0)
            finally:
                kill_tagged(tag)


class LeftoversNotPid1(unittest.TestCase):
    def test_orphan_reparented_after_the_sigkill_scan(self):
        """deadline_fire (final phase, not PID 1): ci_sup_kill_children()
        scans /proc once for direct children and sends SIGKILL; a process
        re-parented to the (subreaper) init after that scan is never
        signalled, no_children never becomes true, and the init hangs
        forever after SIGTERM."""
        tag = new_tag()
        # A detached shell (own session: outlives the service's group kill)
        # that ignores SIGTERM, with a child that is not a direct child of
        # the init until the shell is SIGKILLed.
        inner = "trap '' TERM; %s --tag %s sleep 60 & wait" % (CI_HELPER, tag)
        outer = "setsid sh -c \"%s\" & exec %s --tag %s sleep 60" % (inner, CI_HELPER, tag)
        cfg = {"state_dir": "/tmp/ci-review-state-%d" % os.getpid(), "shutdown_timeout": "1s",
               "services": {"svc": {"command": ["sh", "-c", outer]}}}
        try:
            with Init(cfg, pid1=False) as init:
                init.wait_event(ev("started", "svc"), 5)
                wait_until(lambda: len(find_tagged(tag)) >= 3, 5, what="the process tree")
                init.signal(signal.SIGTERM)
                # 1 s shutdown_timeout + 2 s leftovers + slack.
                self.assertEqual(init.wait(8), 0)
        finally:
            kill_tagged(tag)


class InheritedIgnoredSigchld(unittest.TestCase):
    """An ignored SIGCHLD survives exec (`trap '' CHLD; exec chroma-init`).
    Left so, the kernel reaps the init's children itself: the command's
    status is lost and the init waits forever (tini does)."""

    def _ign(self):
        signal.signal(signal.SIGCHLD, signal.SIG_IGN)

    def test_tini_mode_gets_the_exit_code(self):
        with Init(None, ["--", "sh", "-c", "exit 3"], pid1=False, preexec_fn=self._ign) as init:
            self.assertEqual(init.wait(10), 3)

    def test_config_mode_sees_the_service_exit(self):
        cfg = {"state_dir": "/tmp/ci-review-state-%d" % os.getpid(),
               "services": {"once": {"command": ["sh", "-c", "exit 3"], "restart": "no"}}}
        with Init(cfg, pid1=False, preexec_fn=self._ign) as init:
            e = init.wait_event(ev("exited", "once"), 10)
            self.assertIn("status 3", e.get("msg", ""), e)


class LogBackpressure(unittest.TestCase):
    def test_sigterm_handled_while_stdout_is_not_read(self):
        """logmux.c write_all()/emit(): service output is written to the
        init's stdout with blocking writev() (and poll(-1) on EAGAIN) from
        inside the event loop. When the reader of the container's stdout
        stalls (a paused terminal, `docker attach` with a stopped reader, a
        full pipe), the whole init blocks: no reaping, no signal handling,
        SIGTERM never leads to an exit. The init should apply backpressure
        to the service (stop reading its pipe) instead of blocking."""
        tag = new_tag()
        with tempfile.TemporaryDirectory(prefix="ci-review-") as d:
            cfgp = os.path.join(d, "init.json")
            with open(cfgp, "w") as f:
                json.dump({"state_dir": os.path.join(d, "state"), "shutdown_timeout": "1s",
                           "services": {"chatty": {"command": helper("lines", 200000, tag=tag)},
                                        "idle": {"command": helper("sleep", 60, tag=tag)}}}, f)
            errp = os.path.join(d, "stderr")
            r, w = os.pipe()  # stdout: a pipe nobody reads
            with open(errp, "wb") as err:
                p = subprocess.Popen([CI_BINARY, "--config", cfgp, "--log-format", "json"],
                                     stdin=subprocess.DEVNULL, stdout=w, stderr=err,
                                     start_new_session=True)
            os.close(w)
            try:
                # The pipe (64 KiB) fills up at once.
                wait_until(lambda: "\"started\"" in open(errp).read(), 5, what="started")
                time.sleep(0.5)  # lets the output fill the pipe: no event to wait on
                p.send_signal(signal.SIGTERM)
                try:
                    rc = p.wait(6)
                except subprocess.TimeoutExpired:
                    rc = None
                self.assertIsNotNone(rc, "init blocked writing to a stalled stdout")
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait(5)
                os.close(r)
                kill_pids(find_tagged(tag))
                time.sleep(0.1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
