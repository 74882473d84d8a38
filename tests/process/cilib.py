"""cilib: harness for chroma-init's process tests (Python 3 stdlib only).

Environment (set by CTest): CI_BINARY (chroma-init), CI_HELPER (ci-helper),
CI_SOURCE_DIR (the source tree).

    with Init({"services": {...}}, []) as init:      # PID 1 of a new PID namespace
        init.wait_event(lambda e: e.get("event") == "started", 5)
        init.signal(signal.SIGTERM)
        assert init.wait(10) == 0

Waiting: Init.wait_event() is fed by the reader thread through a condition
variable (no polling). A few facts are only observable by polling /proc or the
file system (a pid appearing, a file written by a child): use wait_until()
for those, and only for those.
"""

import contextlib
import json
import os
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid

CI_BINARY = os.environ.get("CI_BINARY", "")
CI_HELPER = os.environ.get("CI_HELPER", "")
CI_SOURCE_DIR = os.environ.get("CI_SOURCE_DIR", "")


def _become_subreaper():
    """Orphans of what the tests kill come back to the test process (not to
    the host's PID 1, which may not reap), so Init.close() can reap them.
    Only pids the harness killed are ever reaped (never waitpid(-1))."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


_become_subreaper()


class ports:
    """Ports picked at run time."""

    @staticmethod
    def free_port():
        """A TCP port on 127.0.0.1 that was free a moment ago (bind port 0)."""
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]


free_port = ports.free_port


@contextlib.contextmanager
def tmpdir(prefix="ci-test-"):
    """A temporary directory, removed with everything in it at exit."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def new_tag():
    """A unique token to pass as `ci-helper --tag TOKEN`."""
    return "citag-" + uuid.uuid4().hex[:16]


def helper(*args, tag=None):
    """argv for ci-helper: helper("sleep", "5", tag=t) -> [CI_HELPER, "--tag", t, "sleep", "5"]."""
    argv = [CI_HELPER]
    if tag:
        argv += ["--tag", tag]
    return argv + [str(a) for a in args]


def wait_until(fn, timeout, interval=0.01, what=None):
    """Polls fn() until it returns a truthy value, which is returned.

    Only for conditions observable by polling alone (/proc entries, files
    written by children); everything the init reports is awaited with
    Init.wait_event(). Raises TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1fs waiting for %s" % (timeout, what or fn))
        time.sleep(interval)


# ---- /proc ---------------------------------------------------------------

_seen = {}  # token -> set of pids seen alive with it (zombies lose their cmdline)


def _pids():
    for name in os.listdir("/proc"):
        if name.isdigit():
            yield int(name)


def _read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def cmdline(pid):
    """argv of pid as a list of str ([] for zombies and vanished pids)."""
    raw = _read("/proc/%d/cmdline" % pid)
    if not raw:
        return []
    return [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")]


def proc_stat(pid):
    """(state, ppid, pgid, sid) from /proc/PID/stat, or None if gone."""
    raw = _read("/proc/%d/stat" % pid)
    if not raw:
        return None
    rest = raw[raw.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[1]), int(rest[2]), int(rest[3])


def children(pid):
    """Direct children of pid (from /proc/PID/task/*/children)."""
    out = []
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:  # gone (or going) meanwhile
        return out
    for tid in tids:
        raw = _read("/proc/%d/task/%s/children" % (pid, tid))
        if raw:
            out += [int(x) for x in raw.split()]
    return out


def descendants(pid):
    """Every live descendant of pid (children, grandchildren, ...)."""
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            if c not in out:
                out.append(c)
                todo.append(c)
    return out


def find_tagged(token):
    """pids (other than ours) whose /proc/PID/cmdline contains token."""
    me, tok, found = os.getpid(), token.encode(), []
    for pid in _pids():
        if pid == me:
            continue
        raw = _read("/proc/%d/cmdline" % pid)
        if raw and tok in raw:
            found.append(pid)
    _seen.setdefault(token, set()).update(found)
    return found


def zombies(token=None, under=None):
    """Zombie pids that match the token or live under a pid.

    A zombie has no cmdline any more, so with `token` this returns zombies
    that find_tagged() saw alive earlier, or whose parent's cmdline holds the
    token; with `under`, zombies among the descendants of that pid."""
    cands = set()
    if under is not None:
        cands.update(descendants(under))
    out = []
    seen = _seen.get(token, set()) if token else set()
    for pid in _pids() if token else sorted(cands):
        st = proc_stat(pid)
        if not st or st[0] != "Z":
            continue
        if pid in cands or pid in seen:
            out.append(pid)
        elif token and token.encode() in (_read("/proc/%d/cmdline" % st[1]) or b""):
            out.append(pid)
    return out


def kill_pids(pids, sig=_signal.SIGKILL):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _reap(victims, timeout=5):
    """Reaps the killed pids that were re-parented to us (we are a subreaper).
    Polls: a re-parenting is only observable in /proc."""
    me, deadline = os.getpid(), time.monotonic() + timeout
    while victims and time.monotonic() < deadline:
        for pid in list(victims):
            try:
                if os.waitpid(pid, os.WNOHANG)[0]:
                    victims.discard(pid)
            except ChildProcessError:
                st = proc_stat(pid)
                if st is None or (st[1] != me and st[1] not in victims):
                    victims.discard(pid)  # gone, or a live parent will reap it
        if victims:
            time.sleep(0.01)


def kill_tagged(token):
    """SIGKILL every live process tagged with token (test cleanup)."""
    kill_pids(find_tagged(token))


# ---- the init under test ---------------------------------------------------


class Init:
    """chroma-init (or another binary) under test, with captured output.

    Init(config, args, pid1=True, env=None, cwd=None):
      config  dict written to <tmp>/init.json and passed as --config (None: no --config)
      args    further arguments (e.g. ["--", CI_HELPER, "exit", "3"])
      pid1    run under `unshare --pid --fork --mount-proc` (the init is PID 1 of
              a new namespace); False runs it directly (subreaper mode)
      env     variables merged over os.environ (a value None removes the variable)
      binary  run this instead of CI_BINARY (used by the harness self-check)
      log_format  passed as --log-format (None: not passed)

    stdout/stderr are read by background threads: stdout_lines(),
    stdout_bytes(), stderr_lines(), stderr_text(), events() (stderr lines that
    parse as JSON objects), wait_event(). The temp directory is `self.dir`.
    """

    def __init__(self, config=None, args=(), pid1=True, env=None, cwd=None, binary=None,
                 log_format="json", preexec_fn=None):
        self.dir = tempfile.mkdtemp(prefix="ci-init-")
        self.pid1 = pid1
        self.config_path = None
        argv = [binary or CI_BINARY]
        if config is not None:
            self.config_path = os.path.join(self.dir, "init.json")
            with open(self.config_path, "w") as f:
                json.dump(config, f, indent=2)
            argv += ["--config", self.config_path]
        if log_format:
            argv += ["--log-format", log_format]
        argv += [str(a) for a in args]
        if pid1:
            pre = ["unshare", "--pid", "--fork", "--mount-proc"]
            if os.geteuid() != 0:
                pre.append("--map-root-user")
            argv = pre + argv
        self.argv = argv
        full_env = dict(os.environ)
        for k, v in (env or {}).items():
            if v is None:
                full_env.pop(k, None)
            else:
                full_env[k] = str(v)
        self._cond = threading.Condition()
        self._out = []  # bytes lines, newline stripped
        self._err = []
        self._events = []
        self._eof = {"out": False, "err": False}
        self._init_pid = None
        self._closed = False
        self.returncode = None
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, cwd=cwd,
                                     start_new_session=True, preexec_fn=preexec_fn)
        self._threads = [
            threading.Thread(target=self._reader, args=(self.proc.stdout, "out"), daemon=True),
            threading.Thread(target=self._reader, args=(self.proc.stderr, "err"), daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- output --

    def _reader(self, pipe, which):
        for line in iter(pipe.readline, b""):
            line = line[:-1] if line.endswith(b"\n") else line
            with self._cond:
                (self._out if which == "out" else self._err).append(line)
                if which == "err" and line.startswith(b"{"):
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        ev = None
                    if isinstance(ev, dict):
                        self._events.append(ev)
                self._cond.notify_all()
        pipe.close()
        with self._cond:
            self._eof[which] = True
            self._cond.notify_all()

    def stdout_bytes(self):
        with self._cond:
            return list(self._out)

    def stdout_lines(self):
        return [b.decode(errors="replace") for b in self.stdout_bytes()]

    def stderr_bytes(self):
        with self._cond:
            return list(self._err)

    def stderr_lines(self):
        return [b.decode(errors="replace") for b in self.stderr_bytes()]

    def stderr_text(self):
        return "".join(l + "\n" for l in self.stderr_lines())

    def events(self):
        """The init's JSON events so far (stderr lines that are JSON objects)."""
        with self._cond:
            return list(self._events)

    def wait_event(self, predicate, timeout, since=0):
        """Waits for an event (index >= since) with predicate(event) true and
        returns it. Raises TimeoutError (with the stderr tail) on timeout or
        when stderr closes first."""
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self._events):
                    if predicate(self._events[i]):
                        return self._events[i]
                    i += 1
                left = deadline - time.monotonic()
                if self._eof["err"] or left <= 0:
                    why = "stderr closed" if self._eof["err"] else "timed out (%.1fs)" % timeout
                    tail = b"\n".join(self._err[-30:]).decode(errors="replace")
                    raise TimeoutError("wait_event: %s; stderr tail:\n%s" % (why, tail))
                self._cond.wait(left)

    def wait_output(self, predicate, timeout, stream="out"):
        """Waits for a stdout (or "err") line (str) with predicate(line) true."""
        deadline = time.monotonic() + timeout
        lines = self._out if stream == "out" else self._err
        i = 0
        with self._cond:
            while True:
                while i < len(lines):
                    s = lines[i].decode(errors="replace")
                    if predicate(s):
                        return s
                    i += 1
                left = deadline - time.monotonic()
                if self._eof[stream] or left <= 0:
                    raise TimeoutError("wait_output: no matching line on std%s" % stream)
                self._cond.wait(left)

    def mark(self):
        """Number of events so far: pass as `since` to wait for newer ones."""
        with self._cond:
            return len(self._events)

    # -- processes --

    def init_pid(self, timeout=5):
        """The init's host pid: for pid1, unshare's child (the init is PID 1
        inside); otherwise the process started. Polls /proc (the fork of
        unshare is not reported anywhere else)."""
        if self._init_pid is None:
            if not self.pid1:
                self._init_pid = self.proc.pid
            else:
                path = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)

                def child():
                    raw = _read(path)
                    if raw and raw.split():
                        return int(raw.split()[0])
                    if self.proc.poll() is not None:
                        raise RuntimeError("unshare exited (%s) before its child was seen"
                                           % self.proc.returncode)
                    return None

                self._init_pid = wait_until(child, timeout, what="the init's pid")
        return self._init_pid

    def signal(self, sig):
        """Sends sig to the init (as a container engine would)."""
        os.kill(self.init_pid(), sig)

    def running(self):
        return self.proc.poll() is None

    def zombies(self):
        """Zombies among the init's descendants."""
        return zombies(under=self.init_pid())

    def wait(self, timeout):
        """Waits for the init to exit and returns its exit code (negative:
        killed by that signal, as subprocess reports it; under unshare the
        init's own status is passed through). On timeout everything is
        killed and TimeoutError raised."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            tail = self.stderr_text()[-3000:]
            self.close()
            raise TimeoutError("init did not exit within %.1fs; stderr tail:\n%s"
                               % (timeout, tail)) from None
        for t in self._threads:
            t.join(5)
        self.returncode = rc
        return rc

    def close(self):
        """Kills the whole tree (SIGKILL) if it is still running, waits for it
        and removes the temp directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.proc.poll() is None:
            pids = [self.proc.pid]
            try:
                pids += descendants(self.proc.pid)
            except OSError:
                pass
            if self._init_pid:
                pids.append(self._init_pid)
            # The init first: as PID 1 its death takes the namespace with it.
            kill_pids(sorted(set(pids), key=lambda p: p != self._init_pid))
            kill_pids(descendants(self.proc.pid) + [self.proc.pid])
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            _reap(set(pids) - {self.proc.pid})
        for t in self._threads:
            t.join(5)
        for p in (self.proc.stdout, self.proc.stderr):
            try:
                p.close()
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


# ---- shared by the tests -------------------------------------------------

def ev(name, service=None):
    """A predicate for Init.wait_event: event `name` (of `service`, if given)."""
    return lambda e: e.get("event") == name and (service is None or e.get("service") == service)


NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

_NGINX_TLS_CONF = """
worker_processes 1;
error_log stderr;
pid {d}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp;
    proxy_temp_path {d}/tmp;
    fastcgi_temp_path {d}/tmp;
    uwsgi_temp_path {d}/tmp;
    scgi_temp_path {d}/tmp;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        location / {{ return 200 "ok\\n"; }}
    }}
}}
"""


def nginx_tls_conf(d, port, cert, key):
    """Writes d/nginx.conf (and d/tmp) for an nginx serving HTTPS on 127.0.0.1:port
    with that pair, run as `nginx -c d/nginx.conf -g 'daemon off;'`; returns its path."""
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    path = os.path.join(d, "nginx.conf")
    with open(path, "w") as f:
        f.write(_NGINX_TLS_CONF.format(d=d, port=port, cert=cert, key=key))
    return path
