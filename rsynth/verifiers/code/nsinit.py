"""Inside util-linux `unshare` (new PID, network, mount, IPC and UTS namespaces): build a minimal
read-only root, drop every capability, exec the program. Run as a script: stdlib only.

Why: this is the second real sandbox backend, for machines without bubblewrap. `unshare` creates
the namespaces; this script is PID 1 of the new PID namespace (when it, or the program it becomes,
exits, the kernel kills every process left in the namespace, so nothing outlives the run). It
mounts a tmpfs as the new root holding read-only binds of the system directories and the Python
prefix, a fresh /proc and /dev, a private /tmp, and the scratch directory read-write at /tmp/work,
then chroots into it. Capabilities go last (bounding set emptied, no_new_privs), so the program,
though uid 0 in the namespace, can neither remount nor escape the chroot.

Usage: python -I -S nsinit.py NEWROOT WORKDIR RO_PATHS_JSON -- ARGV...
"""

import ctypes
import json
import os
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    1,
    2,
    4,
    8,
    32,
    4096,
    16384,
    1 << 18,
)
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 24, 38
DEVICES = ("null", "zero", "full", "random", "urandom")
MOUNT_POINT = "/tmp/work"

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    if _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target}: {os.strerror(err)}")


def _bind(source, target, flags):
    """A bind mount, then remounted with `flags` (a bind mount ignores flags on creation)."""
    _mount(source, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_NOSUID | flags)


def _place(root, path, is_dir=True):
    target = root + path
    if is_dir:
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    return target


def build_root(root, work, ro_paths):
    """Mount the sandbox's file system under `root` (a directory of the host, private to this
    mount namespace)."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=1m")
    for path in ro_paths:
        if os.path.islink(path) and os.path.dirname(path) == "/":  # merged /usr: /bin -> usr/bin
            os.symlink(os.readlink(path), root + path)
        elif os.path.exists(path):
            _bind(path, _place(root, path, os.path.isdir(path)), MS_RDONLY | MS_NODEV)
    _mount("tmpfs", _place(root, "/dev"), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k")
    for name in DEVICES:
        _bind("/dev/" + name, _place(root, "/dev/" + name, is_dir=False), MS_NOEXEC)  # devices: not nodev
    _mount("proc", _place(root, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _mount("tmpfs", _place(root, "/tmp"), "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m")
    _bind(work, _place(root, MOUNT_POINT), MS_NODEV)
    os.chroot(root)
    os.chdir(MOUNT_POINT)


def drop_privileges():
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
    for cap in range(64):  # past the last capability the kernel knows, prctl fails: stop there
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break
    # uid 0 with an empty bounding set gets no capabilities at exec (permitted = bounding & file).


def main(argv):
    root, work, ro_paths = argv[0], argv[1], json.loads(argv[2])
    command = argv[argv.index("--") + 1 :]
    build_root(root, work, ro_paths)
    drop_privileges()
    os.setsid()  # out of unshare's process group: killpg(0) reaches no process outside the namespace
    os.execve(command[0], command, dict(os.environ))


if __name__ == "__main__":
    main(sys.argv[1:])
