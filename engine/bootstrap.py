"""Base images made offline from the host: ``busybox:latest`` and ``hello-world:latest``.

``busybox`` is the host's static busybox (Debian's busybox-static, or ``$LAYERLAB_BUSYBOX``)
with a minimal rootfs skeleton and applet symlinks, imported like
``docker import -c 'CMD ["sh"]'``. ``hello-world`` holds one tiny static program written here
byte by byte (x86-64 and arm64), like Docker's own hello-world image.

Both are deterministic: every timestamp is ``SOURCE_DATE_EPOCH`` when set, else the busybox
binary's mtime (Debian installs it with the package's timestamp), so the same binary gives the
same image IDs in every home and on every machine.
"""
from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from pathlib import Path

from .errors import EngineError
from .images import add_layer_from_entries, register_config, rfc3339, tag_image
from .layer import Entry, source_date_epoch
from .spec import ContainerConfig, History, ImageConfig, host_platform
from .store import Store
from .values import value

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
"""

GROUP = """root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
mail:x:8:
www-data:x:33:
operator:x:37:
staff:x:50:
users:x:100:
nogroup:x:65534:
"""

SKELETON_DIRS = {
    "bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555, "root": 0o700,
    "sbin": 0o755, "sys": 0o555, "tmp": 0o1777, "usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755,
    "var": 0o755, "var/spool": 0o755, "var/spool/mail": 0o755, "var/www": 0o755,
}

HELLO_MESSAGE = """
Hello from LayerLab!
This message shows that your installation appears to be working correctly.

To generate this message, LayerLab took the following steps:
 1. It found the "hello-world" image in its local store: one read-only layer
    holding one small static program, /hello.
 2. It created a container from that image: a writable layer on top of the
    image's layer, and a process in its own Linux namespaces on your host's kernel.
 3. That process ran /hello, which produced the output you are reading.
 4. LayerLab streamed that output to your terminal or notebook.

To try something more ambitious, run a shell in a busybox container:
 $ layerlab run -it busybox sh

Find more in the notebooks: make lab
"""


class BootstrapError(EngineError):
    """The base images cannot be made on this machine."""


@value
class BootstrapResult:
    busybox: str
    hello_world: str
    created: bool   # False when both images were already there


def find_busybox() -> Path:
    """The busybox binary to use: ``$LAYERLAB_BUSYBOX`` or Debian's static one."""
    env = os.environ.get("LAYERLAB_BUSYBOX")
    candidates = [env] if env else list(BUSYBOX_CANDIDATES)
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return Path(c)
    raise BootstrapError("no static busybox found: install the busybox-static package "
                         "(apt-get install busybox-static) or set LAYERLAB_BUSYBOX")


def _epoch_for(binary: Path) -> int:
    sde = source_date_epoch()
    return sde if sde is not None else int(binary.stat().st_mtime)


def _applets(binary: Path) -> list[str]:
    try:
        out = subprocess.run([str(binary), "--list-full"], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise BootstrapError(f"cannot list the applets of {binary}: {e}") from None
    paths = sorted({p.strip().lstrip("/") for p in out.stdout.split() if p.strip()})
    return [p for p in paths if p and p != "bin/busybox" and ".." not in p.split("/")]


def busybox_entries(binary: Path, epoch: int) -> list[Entry]:
    """The busybox rootfs as layer entries, sorted parents-first."""
    files: dict[str, Entry] = {}
    for d, mode in SKELETON_DIRS.items():
        files[d] = Entry(d, "dir", mode, mtime=epoch)
    files["etc/passwd"] = Entry("etc/passwd", "file", 0o644, mtime=epoch, size=len(PASSWD), data=PASSWD.encode())
    files["etc/group"] = Entry("etc/group", "file", 0o644, mtime=epoch, size=len(GROUP), data=GROUP.encode())
    files["bin/busybox"] = Entry("bin/busybox", "file", 0o755, mtime=epoch, size=binary.stat().st_size,
                                 source=str(binary))
    for applet in _applets(binary):
        parent = applet.rpartition("/")[0]
        while parent and parent not in files:
            files[parent] = Entry(parent, "dir", 0o755, mtime=epoch)
            parent = parent.rpartition("/")[0]
        files.setdefault(applet, Entry(applet, "symlink", 0o777, mtime=epoch, linkname="/bin/busybox"))
    return [files[k] for k in sorted(files, key=lambda p: p.split("/"))]


def hello_program(arch: str, message: bytes = HELLO_MESSAGE.encode()) -> bytes:
    """A minimal static ELF executable that writes ``message`` to stdout and exits 0."""
    base = 0x400000
    header_size = 64 + 56
    n = len(message)
    if arch == "amd64":
        machine = 62
        code = (b"\xb8\x01\x00\x00\x00"            # mov eax, 1 (write)
                b"\xbf\x01\x00\x00\x00"            # mov edi, 1
                b"\x48\x8d\x35\x10\x00\x00\x00"    # lea rsi, [rip+16] -> message
                + b"\xba" + struct.pack("<I", n) +  # mov edx, n
                b"\x0f\x05"                        # syscall
                b"\xb8\x3c\x00\x00\x00"            # mov eax, 60 (exit)
                b"\x31\xff"                        # xor edi, edi
                b"\x0f\x05")                       # syscall
    elif arch == "arm64":
        machine = 183
        if n >= 1 << 16:
            raise BootstrapError("hello message too long")
        words = [0xD2800020,                 # mov x0, #1
                 0x100000E1,                 # adr x1, .+28 -> message
                 0xD2800002 | (n << 5),      # mov x2, #n
                 0xD2800808,                 # mov x8, #64 (write)
                 0xD4000001,                 # svc #0
                 0xD2800000,                 # mov x0, #0
                 0xD2800BA8,                 # mov x8, #93 (exit)
                 0xD4000001]                 # svc #0
        code = b"".join(struct.pack("<I", w) for w in words)
    else:
        raise BootstrapError(f"no hello-world program for architecture {arch}")
    total = header_size + len(code) + n
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, base + header_size, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return ehdr + phdr + code + message


def _image(store: Store, entries: list[Entry], epoch: int, config: ContainerConfig,
           history: tuple[History, ...]) -> str:
    layer = add_layer_from_entries(store, entries, epoch=epoch)
    plat = host_platform()
    image = ImageConfig(architecture=plat.architecture, os=plat.os, variant=plat.variant, created=rfc3339(epoch),
                        config=config, diff_ids=(layer.diff_id,), history=history)
    image_id, _ = register_config(store, image.to_json())
    return image_id


def bootstrap(store: Store, binary: Path | None = None) -> BootstrapResult:
    """Create (or find) ``busybox:latest`` and ``hello-world:latest``; idempotent."""
    binary = binary or find_busybox()
    epoch = _epoch_for(binary)
    ts = rfc3339(epoch)
    before = {t.ref: t.image_id for t in store.tags()}
    bb = _image(store, busybox_entries(binary, epoch), epoch, ContainerConfig(cmd=("sh",)),
                (History(created=ts, comment="Imported from -"),))
    prog = hello_program(host_platform().architecture)
    file_hash = hashlib.sha256(prog).hexdigest()
    hello_entries = [Entry("hello", "file", 0o755, mtime=epoch, size=len(prog), data=prog)]
    hw = _image(store, hello_entries, epoch, ContainerConfig(cmd=("/hello",)), (
        History(created=ts, created_by=f"/bin/sh -c #(nop) COPY file:{file_hash} in / "),
        History(created=ts, created_by='/bin/sh -c #(nop)  CMD ["/hello"]', empty_layer=True),
    ))
    tag_image(store, bb, "busybox:latest")
    tag_image(store, hw, "hello-world:latest")
    created = (before.get("docker.io/library/busybox:latest") != bb
               or before.get("docker.io/library/hello-world:latest") != hw)
    return BootstrapResult(bb, hw, created)


def busybox_available() -> bool:
    try:
        find_busybox()
        return True
    except BootstrapError:
        return False


