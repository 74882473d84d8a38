"""`chroma-init -- CMD`: the tini drop-in, run as PID 1 of a PID namespace."""

import os
import signal
import stat
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cilib import (CI_HELPER, Init, cmdline, descendants, find_tagged, helper,  # noqa: E402
                   new_tag, tmpdir, wait_until, zombies)


def run(args, timeout=20, **kw):
    with Init(None, ["--"] + [str(a) for a in args], log_format=None, **kw) as init:
        rc = init.wait(timeout)
        return rc, init.stderr_text()


class ExitCodes(unittest.TestCase):
    def test_exit_code_passed_through(self):
        self.assertEqual(run(["sh", "-c", "exit 42"])[0], 42)
        self.assertEqual(run(helper("exit", 0))[0], 0)
        self.assertEqual(run(helper("exit", 255))[0], 255)

    def test_killed_by_signal_is_128_plus_n(self):
        self.assertEqual(run(helper("kill-self", "KILL"))[0], 137)
        self.assertEqual(run(helper("kill-self", "SEGV"))[0], 139)

    def test_missing_command_is_127(self):
        rc, err = run(["/nonexistent/command"])
        self.assertEqual(rc, 127)
        self.assertIn("unable to exec /nonexistent/command: no such file or directory", err)
        rc, err = run(["no-such-command-anywhere"])
        self.assertEqual(rc, 127)

    def test_not_executable_is_126(self):
        with tmpdir() as d:
            path = os.path.join(d, "script")
            with open(path, "w") as f:
                f.write("#!/bin/sh\nexit 0\n")
            os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
            rc, err = run([path])
            self.assertEqual(rc, 126)
            self.assertIn("permission denied", err)

    def test_remap_exit_code(self):
        self.assertEqual(run(["sh", "-c", "exit 143"], )[0], 143)
        with Init(None, ["-e", "143", "--", "sh", "-c", "exit 143"], log_format=None) as init:
            self.assertEqual(init.wait(20), 0)
        with Init(None, ["--", "sh", "-c", "exit 130"], log_format=None,
                  env={"CHROMA_INIT_REMAP_EXIT": "143,130"}) as init:
            self.assertEqual(init.wait(20), 0)

    def test_bad_usage_is_2(self):
        self.assertEqual(run([], timeout=10)[0], 2)
        with Init(None, ["-e", "x", "--", "true"], log_format=None) as init:
            self.assertEqual(init.wait(10), 2)


CATCHABLE = ["SIGHUP", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGPIPE", "SIGALRM", "SIGTERM",
             "SIGCONT", "SIGTSTP", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF",
             "SIGWINCH", "SIGIO", "SIGPWR"]


class Signals(unittest.TestCase):
    def test_every_catchable_signal_reaches_the_child(self):
        with tmpdir() as d:
            rec = os.path.join(d, "signals")
            with Init(None, ["--"] + helper("record-signals", rec, "--exit-on", "SIGUSR2"),
                      log_format=None) as init:
                wait_until(lambda: os.path.exists(rec) and "READY" in open(rec).read(), 10,
                           what="the child's READY")
                for name in CATCHABLE:
                    init.signal(getattr(signal, name))
                    wait_until(lambda: name in open(rec).read().split(), 10,
                               what="%s recorded by the child" % name)
                init.signal(signal.SIGUSR2)
                self.assertEqual(init.wait(20), 0)
                got = open(rec).read().split()
                for name in CATCHABLE + ["SIGUSR2"]:
                    self.assertIn(name, got)

    def test_dash_g_signals_the_whole_group(self):
        with tmpdir() as d:
            f1, f2 = os.path.join(d, "one"), os.path.join(d, "two")
            script = '"$0" record-signals "$2" --exit-on SIGUSR2 & exec "$0" record-signals "$1" --exit-on SIGUSR2'
            for group in (False, True):
                for f in (f1, f2):
                    if os.path.exists(f):
                        os.unlink(f)
                args = (["-g"] if group else []) + ["--", "sh", "-c", script, CI_HELPER, f1, f2]
                with Init(None, args, log_format=None) as init:
                    wait_until(lambda: all(os.path.exists(f) and "READY" in open(f).read()
                                           for f in (f1, f2)), 10, what="both READY")
                    init.signal(signal.SIGUSR1)
                    wait_until(lambda: "SIGUSR1" in open(f1).read(), 10, what="USR1 to child")
                    if group:
                        wait_until(lambda: "SIGUSR1" in open(f2).read(), 10,
                                   what="USR1 to the group")
                    init.signal(signal.SIGUSR2)
                    self.assertEqual(init.wait(20), 0)
                    if not group:
                        self.assertNotIn("SIGUSR1", open(f2).read())

    def test_verbose_logs_each_forward_quiet_logs_none(self):
        for verbose in (False, True):
            with tmpdir() as d:
                rec = os.path.join(d, "signals")
                args = (["--verbose"] if verbose else []) + ["--"] + helper(
                    "record-signals", rec, "--exit-on", "SIGUSR2")
                with Init(None, args) as init:
                    wait_until(lambda: os.path.exists(rec) and "READY" in open(rec).read(), 10,
                               what="the child's READY")
                    init.signal(signal.SIGUSR1)
                    wait_until(lambda: "SIGUSR1" in open(rec).read().split(), 10,
                               what="SIGUSR1 recorded by the child")
                    init.signal(signal.SIGUSR2)
                    self.assertEqual(init.wait(20), 0)
                    fwd = [e.get("msg") for e in init.events() if e.get("event") == "forward"]
                    self.assertEqual(fwd, ["forwarded SIGUSR1", "forwarded SIGUSR2"]
                                     if verbose else [])

    def test_sigterm_is_forwarded_not_a_shutdown(self):
        # The child handles TERM and exits 7: the init passes 7 through.
        with Init(None, ["--", "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done"],
                  log_format=None) as init:
            # The trap is set once the loop runs a `sleep` (sh's own argv holds the
            # word too: match the command name).
            wait_until(lambda: any(cmdline(p)[:1] == ["sleep"]
                                   for p in descendants(init.init_pid())),
                       10, what="the loop running")
            init.signal(signal.SIGTERM)
            self.assertEqual(init.wait(20), 7)


def helpers(tag):
    """Live ci-helper processes carrying tag (the init's own argv holds it too)."""
    return [p for p in find_tagged(tag) if cmdline(p)[:1] == [CI_HELPER]]


class Reaping(unittest.TestCase):
    def check_orphans(self, pid1):
        tag = new_tag()
        with Init(None, ["--"] + helper("orphans", 10000, "--stay", tag=tag), log_format=None,
                  pid1=pid1) as init:
            # The helper forks 10 000 grandchildren that exit at once; they
            # are re-parented to the init, which must reap every one.
            init.wait_output(lambda l: l == "orphaned 10000", 60)
            # Done when the helper is the init's only descendant: an orphan
            # still exiting or a zombie not yet reaped is still listed.
            wait_until(lambda: len(descendants(init.init_pid())) == 1, 60,
                       what="all orphans reaped")
            self.assertEqual(init.zombies(), [])
            self.assertEqual(len(helpers(tag)), 1)
            self.assertEqual(zombies(tag), [])
            init.signal(signal.SIGTERM)
            self.assertEqual(init.wait(20), 128 + signal.SIGTERM)
        self.assertEqual(helpers(tag), [])

    def test_10000_orphans_as_pid1(self):
        self.check_orphans(True)

    def test_10000_orphans_as_subreaper(self):
        self.check_orphans(False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
