"""The container shim: small single-threaded helper processes that enter namespaces and run pid 1.

``unshare(CLONE_NEWUSER)`` refuses multi-threaded callers, which is why this cannot run inside the
(threaded) Jupyter kernel itself.  Every caller process starts one *zygote* (a fork server, see
:func:`zygote`) as
``python -S -I -c "import sys; sys.path.insert(0, <dir>); import _shim; _shim.zygote()" <socket fd>``:
no ``site``, no package ``__init__``, nothing but the standard library, because it is on the critical
path of every container start.  Each container then costs one fork of the zygote::

    caller ──socket──▶ zygote ──fork──▶ S (own session; user/mount/uts/ipc[/net] namespaces entered)
                                         └─fork─▶ G = pid 1 of the new pid namespace:
                                                  mounts, pivot_root, capabilities, ids, exec argv

A single-threaded caller's first container skips the zygote: the caller forks S itself (through
an intermediate child, so that S is not its child) and S closes and resets what it inherited, then
runs :func:`run` as the zygote's child would (see ``spawner.fork_shim``); the module is then
imported as ``engine.runtime._shim``, in the caller.

Descriptors (passed with the request as one ``SCM_RIGHTS`` message, after stdin/stdout/stderr):

* ``spec``: the caller writes the request (a :mod:`marshal`-ed dict) and closes it;
* ``status``: S writes ``PID <host pid of G>``; G writes ``ERR <exit code> <message>`` if anything
  fails before ``execve``.  G's copy is close-on-exec, so EOF without ``ERR`` means the exec happened;
* ``ctl``: the caller writes one byte per signal to forward to G (S forwards only while G is not
  reaped, so a recycled pid is never signalled).  EOF means the caller is gone: a container that is
  not detached is then killed;
* ``done``: S writes ``<exit code>`` (Docker's: 128+n for signal n) once G has ended;
* then, as the request's ``extra`` list names them: listening sockets of published ports (``listen``),
  the json-file log (``log``), a pty master and the caller's end of its relay (``master``, ``relay``).

Request kinds: ``R`` runs a container as above; ``E`` runs a process in a running container's
namespaces (``docker exec``, see :func:`exec_run`): E joins them with ``setns`` and forks X, which is
inside the container's pid namespace, then supervises X the way S supervises G.

With published ports, logs or an owned pty, S runs the loop of ``_shim_io`` (forwarder, log pumps)
until G ends.  S writes ``state.json`` (pids and their start times, the pid namespace, ports, log
path), ``pid`` and, at the end, ``exit_code`` into the caller's state directory; ``state.json`` is
written before start() returns, ``exit_code`` after the ports are closed and the log is complete.

Nothing may be imported lazily after ``pivot_root``: the host's file system is gone by then.  This
is one file, longer than the engine's other modules, on purpose: it is imported as a top-level
module outside the package, so it cannot share code with the engine, and each extra import costs
time on every start.
"""
import ctypes
import fcntl
import marshal
import os
import select
import struct
import sys

import _signal

try:
    import _shim_io
except ImportError:  # imported as engine.runtime._shim (tests, tools), not as the shim
    from . import _shim_io

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p)
libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
libc.unshare.argtypes = (ctypes.c_int,)
libc.sethostname.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)
libc.setns.argtypes = (ctypes.c_int, ctypes.c_int)
libc.chroot.argtypes = (ctypes.c_char_p,)

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

TIOCSCTTY = 0x540E
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_IN_ROOT = 0x10

SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
SYS_OPENAT2 = 437
SYS_MOUNT_SETATTR = 442

#: Docker's default capability set (moby oci/caps/defaults.go); every other one is dropped from
#: the bounding set, so that container root can neither mount nor undo the masks below.
DEFAULT_CAPS = frozenset({
    0,   # CHOWN
    1,   # DAC_OVERRIDE
    3,   # FOWNER
    4,   # FSETID
    5,   # KILL
    6,   # SETGID
    7,   # SETUID
    8,   # SETPCAP
    10,  # NET_BIND_SERVICE
    13,  # NET_RAW
    18,  # SYS_CHROOT
    27,  # MKNOD
    29,  # AUDIT_WRITE
    31,  # SETFCAP
})

#: moby's default masked and read-only paths (oci/defaults.go).
MASKED_PATHS = ("proc/asound", "proc/acpi", "proc/kcore", "proc/keys", "proc/latency_stats",
                "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
                "sys/firmware", "sys/devices/virtual/powercap")
READONLY_PATHS = ("proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger")

DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STAGE = "/tmp"  # covered by a private tmpfs in the container's mount namespace only
#: ``comm`` of the shim processes, so that a leak check can find them (15 characters at most)
SHIM_NAME = b"layerlab-shim"
EXEC_NAME = b"layerlab-exec"
ZYGOTE_NAME = b"layerlab-zygote"
#: the message E reports when the container it should join is gone
NOT_RUNNING = "container is not running"
#: at most this many descriptors per request (the kernel's SCM_MAX_FD is 253)
MAX_FDS = 253


class SetupError(Exception):
    """A failure before execve, reported to the caller as ``ERR <code> <message>``."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else exit_code_for(message)


def exit_code_for(message: str) -> int:
    """docker/cli's rule (run.go): 127 for not found, 126 for not permitted, else 125."""
    if "executable file not found" in message or "no such file or directory" in message:
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


def _errmsg(err: int) -> str:
    text = os.strerror(err)
    return text[:1].lower() + text[1:]


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what}: {_errmsg(err)}")
    return ret


def _b(path: str | None) -> bytes | None:
    return os.fsencode(path) if path is not None else None


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    ret = libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(ret, f"mount {fstype or source} on {target}")


def fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def openat2(dirfd: int, path: str, flags: int, resolve: int) -> int:
    how = struct.pack("QQQ", flags | os.O_CLOEXEC, 0, resolve)
    fd = libc.syscall(ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dirfd), ctypes.c_char_p(_b(path)),
                      ctypes.c_char_p(how), ctypes.c_size_t(len(how)))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return fd


def make_readonly(fd: int) -> None:
    """Make the mount at ``fd`` (and every mount below it) read-only."""
    attr = struct.pack("QQQQ", MOUNT_ATTR_RDONLY, 0, 0, 0)
    ret = libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(fd), ctypes.c_char_p(b""),
                       ctypes.c_uint(AT_EMPTY_PATH | AT_RECURSIVE), ctypes.c_char_p(attr),
                       ctypes.c_size_t(len(attr)))
    if ret == 0:
        return
    # pre-5.12 kernels: a classic remount, repeating the flags the kernel locked on this mount
    st = os.statvfs(fdpath(fd))
    locked = 0
    for st_flag, ms_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
                             (os.ST_NOATIME, MS_NOATIME), (os.ST_NODIRATIME, MS_NODIRATIME),
                             (os.ST_RELATIME, MS_RELATIME)):
        if st.f_flag & st_flag:
            locked |= ms_flag
    mount(None, fdpath(fd), None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)


class Root:
    """The new root file system, reached only through ``openat2(RESOLVE_IN_ROOT)``.

    Symlinks inside the image are resolved as if the new root were ``/``, so a mount target can
    never land outside the container's root however its symlinks point.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    def open(self, rel: str) -> int:
        return openat2(self.fd, rel.lstrip("/") or ".", os.O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

    def ensure(self, rel: str, is_dir: bool) -> int:
        """Open ``rel`` inside the root, creating it (and its parents) as a directory or empty file."""
        rel = rel.strip("/")
        try:
            return self.open(rel)
        except FileNotFoundError:
            pass
        head, _, name = rel.rpartition("/")
        if not name or name in (".", ".."):
            raise SetupError(f"invalid mount target /{rel}")
        parent = self.ensure(head, True)
        try:
            if is_dir:
                os.mkdir(name, 0o755, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent))
        except FileExistsError:
            pass  # a dangling symlink: refused below
        finally:
            os.close(parent)
        try:
            return self.open(rel)
        except FileNotFoundError:
            raise SetupError(f"mount target /{rel} is a symlink to a path that does not exist in the "
                             "container: refusing to follow it") from None


def write_file(path: str, text: str, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# S: namespaces and supervision


def write_id_maps(pid: int | str, uid_map: str, gid_map: str, deny_setgroups: bool) -> None:
    if deny_setgroups:
        write_file(f"/proc/{pid}/setgroups", "deny")
    write_file(f"/proc/{pid}/uid_map", uid_map)
    write_file(f"/proc/{pid}/gid_map", gid_map)


def enter_namespaces(req: dict) -> bool:
    """unshare every namespace; write the id maps (see the sandbox module docstring)."""
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID
    if req["network"] != "host":
        flags |= CLONE_NEWNET
    host_uid, host_gid = os.geteuid(), os.getegid()
    if host_uid != 0:
        _check(libc.unshare(flags), "unshare")
        write_id_maps("self", f"{req['uid']} {host_uid} 1\n", f"{req['gid']} {host_gid} 1\n", True)
        return False
    # real root: the identity map needs CAP_SETUID in the parent namespace, which we lose by
    # unsharing, so a helper forked beforehand writes it for us.
    go_r, go_w = os.pipe()
    res_r, res_w = os.pipe()
    shim = os.getpid()
    helper = os.fork()
    if helper == 0:
        try:
            os.close(go_w)
            os.close(res_r)
            if os.read(go_r, 1) == b"1":
                full = "0 0 4294967295\n"
                try:
                    write_id_maps(shim, full, full, False)
                    os.write(res_w, b"1")
                except OSError as e:
                    os.write(res_w, f"E{e}".encode())
        finally:
            os._exit(0)
    os.close(go_r)
    os.close(res_w)
    try:
        ret = libc.unshare(flags)
        err = ctypes.get_errno()
        os.write(go_w, b"1" if ret == 0 else b"0")
        result = os.read(res_r, 4096)
    finally:
        os.close(go_w)
        os.close(res_r)
        os.waitpid(helper, 0)
    if ret != 0:
        raise SetupError(f"unshare: {_errmsg(err)}")
    if result != b"1":
        raise SetupError(f"writing the uid/gid maps failed: {result[1:].decode(errors='replace')}")
    return True


def report(fd: int, line: str) -> None:
    try:
        os.write(fd, (line.replace("\n", " ") + "\n").encode(errors="replace"))
    except OSError:
        pass


def write_state(dir_fd: int, name: str, text: str) -> None:
    """Atomically write ``name`` in the state directory (opened before /tmp was covered)."""
    if dir_fd < 0:
        return
    tmp = f".{name}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644, dir_fd=dir_fd)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        pass


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def set_name(name: bytes) -> None:
    """Set this process's ``comm`` (what ``ps`` and a leak check see)."""
    libc.prctl(PR_SET_NAME, ctypes.cast(ctypes.c_char_p(name), ctypes.c_void_p).value or 0, 0, 0, 0)


def start_time(proc_fd: int, pid: int) -> int:
    """Field 22 of ``/proc/<pid>/stat``: with the pid, it names one process for good."""
    fd = os.open(f"{pid}/stat", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc_fd)
    try:
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    return int(data[data.rindex(b")") + 2:].split()[19])


def fail(status_fd: int, e: BaseException) -> None:
    """Report a setup failure of S or E to the caller and leave."""
    message = e.message if isinstance(e, SetupError) else f"container shim: {e}"
    code = e.code if isinstance(e, SetupError) else 125
    report(status_fd, f"ERR {code} {message}")
    os._exit(code)


def finish(state_fd: int, done_fd: int, code: int) -> None:
    write_state(state_fd, "exit_code", f"{code}\n")
    try:
        os.write(done_fd, f"{code}\n".encode())
    except OSError:
        pass
    os._exit(code)


def run(spec_fd: int, status_fd: int, ctl_fd: int, done_fd: int, extra: list) -> None:
    """S: read the request, enter the namespaces, fork pid 1, supervise it, report its exit code."""
    try:
        req = marshal.loads(read_all(spec_fd))
        state_fd = -1
        if req["state_dir"]:
            state_fd = os.open(req["state_dir"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        # G's pivot_root moves S's root too: /proc is reached through a descriptor from now on
        proc_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        io = _shim_io.ContainerIO(req, extra)
        req["setgroups"] = enter_namespaces(req)
    except Exception as e:  # noqa: BLE001 - reported to the caller, who raises ContainerError
        fail(status_fd, e)
    sync_r, sync_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(sync_w)
        container_init(req, status_fd, sync_r, io)  # never returns
    os.close(sync_r)
    set_name(SHIM_NAME)
    if state_fd >= 0:
        state = dict(req["state"])
        try:
            state.update(pid=pid, pid_start=start_time(proc_fd, pid),
                         pidns=os.readlink(f"{pid}/ns/pid", dir_fd=proc_fd),
                         shim_pid=os.getpid(), shim_start=start_time(proc_fd, os.getpid()))
        except OSError:
            pass  # G already failed; its report says why
        write_state(state_fd, "state.json", _shim_io.json_value(state) + "\n")
        write_state(state_fd, "pid", f"{pid}\n")
    os.close(proc_fd)
    loop = _shim_io.Loop()
    supervisor = _shim_io.Supervisor(loop, pid, ctl_fd, req["detach"])
    io.start(loop, req["detach"])
    report(status_fd, f"PID {pid}")
    os.close(status_fd)
    code = supervisor.run()
    io.finish()
    finish(state_fd, done_fd, code)


def exec_run(spec_fd: int, status_fd: int, ctl_fd: int, done_fd: int) -> None:
    """E: join a running container's namespaces, fork X inside them, supervise X (``docker exec``)."""
    try:
        req = marshal.loads(read_all(spec_fd))
        join_container(req)
    except Exception as e:  # noqa: BLE001 - reported to the caller, who raises ContainerError
        fail(status_fd, e)
    sync_r, sync_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(sync_w)
        exec_init(req, status_fd, sync_r)  # never returns
    os.close(sync_r)
    set_name(EXEC_NAME)
    supervisor = _shim_io.Supervisor(_shim_io.Loop(), pid, ctl_fd, req["detach"])
    report(status_fd, f"PID {pid}")
    os.close(status_fd)
    finish(-1, done_fd, supervisor.run())


def join_container(req: dict) -> None:
    """setns into every namespace of the container's pid 1, verified by its start time, and its root."""
    pid = req["pid"]
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        raise SetupError(NOT_RUNNING, 1) from None
    proc_fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if start_time(proc_fd, pid) != req["pid_start"]:
            raise SetupError(NOT_RUNNING, 1)
        root_fd = os.open(f"{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=proc_fd)
    except (OSError, ValueError, IndexError):
        raise SetupError(NOT_RUNNING, 1) from None
    finally:
        os.close(proc_fd)
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC
    if req["network"] != "host":
        flags |= CLONE_NEWNET
    _check(libc.setns(pidfd, flags), "setns")
    os.close(pidfd)
    os.fchdir(root_fd)
    _check(libc.chroot(b"."), "chroot")
    os.close(root_fd)


def zygote() -> None:
    """Fork server: one per calling process, so that a container start costs a fork, not a Python start.

    Each request is one SOCK_SEQPACKET message, ``R`` (run a container) or ``E`` (exec in one),
    carrying at least 7 descriptors (stdin, stdout, stderr, spec, status, ctl, done; ``R`` may add
    more, see the module docstring); EOF on the socket means the caller is gone.  Children are never
    waited for (SIGCHLD ignored): each one supervises its own process and reports through its pipes.
    """
    import _socket

    sock = _socket.socket(fileno=int(sys.argv[1]))
    os.set_inheritable(sock.fileno(), False)
    _signal.signal(_signal.SIGCHLD, _signal.SIG_IGN)
    set_name(ZYGOTE_NAME)
    space = _socket.CMSG_SPACE(MAX_FDS * 4)
    while True:
        try:
            msg, ancdata, _, _ = sock.recvmsg(16, space, _socket.MSG_CMSG_CLOEXEC)
        except InterruptedError:
            continue
        if not msg:
            os._exit(0)
        fds = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                usable = len(data) - len(data) % 4
                fds.extend(struct.unpack(f"{usable // 4}i", data[:usable]))
        if msg in (b"R", b"E") and len(fds) >= 7 and os.fork() == 0:
            try:
                sock.close()
                _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
                os.setsid()
                for target, fd in enumerate(fds[:3]):
                    os.dup2(fd, target)
                for fd in fds[:3]:
                    os.close(fd)
                if msg == b"R":
                    run(*fds[3:7], fds[7:])
                else:
                    exec_run(*fds[3:7])
            finally:
                os._exit(125)  # a child must never fall back into the zygote's loop
        for fd in fds:
            os.close(fd)


# ---------------------------------------------------------------------------------------------
# G: pid 1 of the new pid namespace


def parent_death_armed(sync_r: int) -> None:
    """(Re-)arm SIGKILL on the supervisor's death; leave if it already died (its pipe end is closed).

    Needed again after ``setuid``/``setgid``: the kernel clears the parent-death signal whenever
    the credentials change, and a container must never outlive its shim.
    """
    libc.prctl(PR_SET_PDEATHSIG, _signal.SIGKILL, 0, 0, 0)
    if select.select([sync_r], [], [], 0)[0]:
        os._exit(137)


def container_init(req: dict, status_fd: int, sync_r: int, io: "_shim_io.ContainerIO") -> None:
    """G: stdio, a session (with the tty), the root file system, then the command."""

    def setup() -> None:
        io.place_stdio()
        new_session(req["tty"])
        prepare_root(req)

    exec_command(req, status_fd, sync_r, setup, create_cwd=True)


def exec_init(req: dict, status_fd: int, sync_r: int) -> None:
    """X: forked inside the container's namespaces by E; as G, minus the stdio and the mounts."""
    exec_command(req, status_fd, sync_r, lambda: new_session(req["tty"]), create_cwd=False)


def new_session(tty: bool) -> None:
    os.setsid()
    if tty:
        fcntl.ioctl(0, TIOCSCTTY, 0)


def exec_command(req: dict, status_fd: int, sync_r: int, setup, create_cwd: bool) -> None:  # noqa: ANN001
    """Run ``setup()`` (no arguments), take the process's identity, exec its command; report failures.

    (``setup`` is unannotated: ``typing`` is not worth its import time on every container start.)
    """
    code = 125
    try:
        parent_death_armed(sync_r)
        setup()
        path, argv, env = prepare_process(req, create_cwd)
        parent_death_armed(sync_r)
        try:
            os.execve(path, argv, env)
        except OSError as e:
            raise SetupError(f'exec: "{argv[0]}": {_errmsg(e.errno)}', 127 if e.errno == 2 else 126) from None
    except BaseException as e:  # noqa: BLE001 - whatever happens, the process must report and leave
        code = report_failure(status_fd, e)
    os._exit(code)


def report_failure(status_fd: int, e: BaseException) -> int:
    """Report why G or X could not exec its command; returns the exit code to leave with."""
    if isinstance(e, SetupError):
        code, message = e.code, e.message
    elif isinstance(e, OSError):
        what = f"{e.strerror[:1].lower()}{e.strerror[1:]}" if e.strerror else str(e)
        message = f"{what}: {e.filename}" if e.filename else what
        code = exit_code_for(message)
    else:
        code, message = 125, f"internal error in the container shim: {e!r}"
    report(status_fd, f"ERR {code} {message}")
    return code


def prepare_root(req: dict) -> None:
    """Assemble the root file system in a private mount namespace and pivot into it."""
    lower_fds = [os.open(d, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for d in req["lowerdirs"]]
    upper_fd = os.open(req["upperdir"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    work_fd = os.open(req["workdir"], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) if req["workdir"] else -1
    sources = []
    for source, target, readonly in req["mounts"]:
        try:
            sources.append((os.open(source, os.O_PATH | os.O_CLOEXEC), target, readonly))
        except OSError as e:
            raise SetupError(f"invalid mount config: bind source path {source}: {_errmsg(e.errno)}") from None

    mount(None, "/", None, MS_REC | MS_PRIVATE)
    mount("tmpfs", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m")
    new_root = f"{STAGE}/root"
    os.mkdir(new_root, 0o755)
    for name, text in (("hosts", req["hosts"]), ("hostname", req["hostname"] + "\n"),
                       ("resolv.conf", req["resolv_conf"])):
        write_file(f"{STAGE}/{name}", text)

    if req["mode"] == "overlay":
        lowers = ":".join(fdpath(fd) for fd in lower_fds)
        mount("overlay", new_root, "overlay", 0,
              f"lowerdir={lowers},upperdir={fdpath(upper_fd)},workdir={fdpath(work_fd)},userxattr")
    else:
        mount(fdpath(upper_fd), new_root, None, MS_BIND | MS_REC)
    for fd in lower_fds + [upper_fd, work_fd]:
        if fd >= 0:
            os.close(fd)
    root = Root(new_root)

    mount_proc(root)
    mount_dev(root, req)
    mount_sys(root, req["network"] == "host")
    for name in ("hosts", "hostname", "resolv.conf"):
        target = root.ensure(f"etc/{name}", False)
        mount(f"{STAGE}/{name}", fdpath(target), None, MS_BIND)
        os.close(target)
    for source_fd, target_path, readonly in sources:
        is_dir = os.path.isdir(fdpath(source_fd))
        target = root.ensure(target_path, is_dir)
        mount(fdpath(source_fd), fdpath(target), None, MS_BIND | MS_REC)
        os.close(target)
        if readonly:
            mounted = root.open(target_path)
            make_readonly(mounted)
            os.close(mounted)
        os.close(source_fd)
    mask_paths(root)

    if req["hostname"]:
        name = req["hostname"].encode()
        _check(libc.sethostname(name, len(name)), "sethostname")
    if req["network"] != "host":
        loopback_up()

    os.fchdir(root.fd)
    _check(libc.syscall(ctypes.c_long(SYS_PIVOT_ROOT[os.uname().machine]), ctypes.c_char_p(b"."),
                        ctypes.c_char_p(b".")), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "umount old root")
    os.chdir("/")
    os.close(root.fd)


def mount_proc(root: Root) -> None:
    target = root.ensure("proc", True)
    mount("proc", fdpath(target), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    os.close(target)


def mount_dev(root: Root, req: dict) -> None:
    target = root.ensure("dev", True)
    mount("tmpfs", fdpath(target), "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k")
    os.close(target)
    dev_fd = root.open("dev")
    dev = fdpath(dev_fd)
    for name in DEV_NODES:
        os.close(os.open(f"{dev}/{name}", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o666))
        mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, link in DEV_LINKS:
        os.symlink(link, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts", 0o755)
    os.mkdir(f"{dev}/shm", 0o1777)
    os.mkdir(f"{dev}/mqueue", 0o755)
    pts_opts = "newinstance,ptmxmode=0666,mode=0620" + (",gid=5" if req["setgroups"] else "")
    mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID | MS_NOEXEC, pts_opts)
    mount("shm", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")
    try:
        mount("mqueue", f"{dev}/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except SetupError:
        os.rmdir(f"{dev}/mqueue")
    if req["tty"]:
        os.close(os.open(f"{dev}/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        mount(os.ttyname(0), f"{dev}/console", None, MS_BIND)
    os.close(dev_fd)


def mount_sys(root: Root, host_network: bool) -> None:
    target = root.ensure("sys", True)
    flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    try:
        if host_network:
            raise SetupError("sysfs belongs to the host's network namespace")
        mount("sysfs", fdpath(target), "sysfs", flags)
    except SetupError:
        # without a network namespace of our own, sysfs cannot be mounted: bind the host's, read-only
        mount("/sys", fdpath(target), None, MS_BIND | MS_REC)
        mounted = root.open("sys")
        make_readonly(mounted)
        os.close(mounted)
    os.close(target)


def mask_paths(root: Root) -> None:
    for rel in MASKED_PATHS:
        try:
            fd = root.open(rel)
        except OSError:
            continue
        try:
            if os.path.isdir(fdpath(fd)):
                mount("tmpfs", fdpath(fd), "tmpfs", MS_RDONLY, "mode=0555")
            else:
                mount("/dev/null", fdpath(fd), None, MS_BIND)
        finally:
            os.close(fd)
    for rel in READONLY_PATHS:
        try:
            fd = root.open(rel)
        except OSError:
            continue
        mount(fdpath(fd), fdpath(fd), None, MS_BIND | MS_REC)
        os.close(fd)
        fd = root.open(rel)
        make_readonly(fd)
        os.close(fd)


def loopback_up() -> None:
    import _socket  # before pivot_root, so still importable

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(sock.fileno(), SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))
    finally:
        sock.close()


def drop_capabilities() -> None:
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0:
            break
        if cap not in DEFAULT_CAPS:
            _check(libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def home_of(uid: int) -> str:
    try:
        with open("/etc/passwd", "rb") as f:
            for line in f:
                fields = line.decode(errors="replace").rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def look_path(name: str, path_var: str) -> str:
    """Go's exec.LookPath, as runc uses it; returns the path or raises SetupError."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as e:
            raise SetupError(f'exec: "{name}": stat {name}: {_errmsg(e.errno)}') from None
        if (st.st_mode & 0o170000) == 0o040000 or not st.st_mode & 0o111:
            raise SetupError(f'exec: "{name}": permission denied', 126)
        return name
    for directory in path_var.split(":"):
        candidate = f"{directory or '.'}/{name}"
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if (st.st_mode & 0o170000) != 0o040000 and st.st_mode & 0o111:
            return candidate
    raise SetupError(f'exec: "{name}": executable file not found in $PATH', 127)


def prepare_process(req: dict, create_cwd: bool = True) -> tuple[str, list[str], dict[str, str]]:
    """Inside the new root: working directory, capabilities, ids, environment, executable.

    The working directory is created for a container's main process (as runc does) but not for
    ``exec``, where a missing one is an error (as in Docker).
    """
    cwd = req["cwd"] or "/"
    if create_cwd:
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)
        except OSError as e:
            raise SetupError(f"mkdir {cwd}: {_errmsg(e.errno)}") from None
    env = {}
    for item in req["env"]:
        key, eq, value = item.partition("=")
        if eq and key:
            env[key] = value
    if "HOME" not in env:
        env["HOME"] = home_of(req["uid"])
    drop_capabilities()
    if req["setgroups"]:
        os.setgroups(list(req["groups"]))
    os.setgid(req["gid"])
    os.setuid(req["uid"])
    try:
        os.chdir(cwd)
    except OSError as e:
        raise SetupError(f"chdir to cwd ({cwd!r}) set in config.json failed: {_errmsg(e.errno)}") from None
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)
    argv = list(req["argv"])
    path = look_path(argv[0], env.get("PATH", DEFAULT_PATH))
    return path, argv, env


# ---------------------------------------------------------------------------------------------
# overlay probe


def probe(base: str) -> None:
    """Exit 0 when overlayfs (with whiteouts) can be mounted in a user namespace under ``base``."""
    uid, gid = os.geteuid(), os.getegid()
    try:
        _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
        write_id_maps("self", f"0 {uid} 1\n", f"0 {gid} 1\n", True)
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        merged = f"{base}/merged"
        mount("overlay", merged, "overlay", 0,
              f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work,userxattr")
        write_file(f"{merged}/new", "x")
        os.unlink(f"{merged}/old")
        st = os.lstat(f"{base}/upper/old")
        if not ((st.st_mode & 0o170000) == 0o020000 and st.st_rdev == 0):
            os.getxattr(f"{base}/upper/old", "user.overlay.whiteout", follow_symlinks=False)
        libc.umount2(_b(merged), MNT_DETACH)
    except (SetupError, OSError) as e:
        sys.stderr.write(f"{getattr(e, 'message', e)}\n")
        os._exit(1)
    os._exit(0)


