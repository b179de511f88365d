"""The sandbox launcher: applies resource limits (and a Landlock ruleset when asked), then execs the command.

Run as `python -I -S launch.py SPEC_JSON -- argv...` by `agent.sandbox.runner`; standard library
only, so it starts in milliseconds and imports nothing from the gateway. SPEC_JSON:

    {"rlimits": {"cpu": 60, "as": 2147483648, "nproc": 256, "fsize": 1073741824},
     "landlock": {"read": ["/usr", ...], "write": ["/work/ws", ...], "devices": ["/dev/null", ...],
                  "network": false}}          # absent: no Landlock (bubblewrap or sandbox = "none")

Landlock (Linux 5.13+, no privilege needed) is applied through raw syscalls: a ruleset handling
every filesystem right the kernel knows, path-beneath rules for the allowed folders, no new
privileges, then restrict_self. With ABI 4+ and network off, TCP bind and connect are refused;
with ABI 6+, signals to and abstract sockets of processes outside the sandbox are refused.
The module is also imported by the gateway for `abi_version()` (is Landlock there?).
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import sys

SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446), "arm64": (444, 445, 446),
            "riscv64": (444, 445, 446), "ppc64le": (444, 445, 446), "s390x": (444, 445, 446)}
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
ABI1_ALL = (1 << 13) - 1                  # EXECUTE ... MAKE_SYM
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1


class LandlockError(OSError):
    """Landlock is missing or refused the ruleset."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _numbers() -> tuple[int, int, int]:
    machine = platform.machine().lower()
    if machine not in SYSCALLS:
        raise LandlockError(f"Landlock syscalls are not known for this architecture ({machine})")
    return SYSCALLS[machine]


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        create, _, _ = _numbers()
    except LandlockError:
        return 0
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    version = libc.syscall(ctypes.c_long(create), None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(version), 0)


def _handled_fs(abi: int) -> int:
    rights = ABI1_ALL
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict(read: list[str], write: list[str], devices: list[str], network: bool) -> int:
    """Confine this process (and what it execs) to the given paths; returns the ABI used."""
    abi = abi_version()
    if abi < 1:
        raise LandlockError("Landlock is not available in this kernel (Linux 5.13+ with landlock enabled in the LSM list)")
    create, add_rule, restrict_self = _numbers()
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4 and not network:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    ruleset = libc.syscall(ctypes.c_long(create), ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise LandlockError(f"landlock_create_ruleset failed: {os.strerror(ctypes.get_errno())}")
    read_rights = EXECUTE | READ_FILE | READ_DIR
    try:
        for paths, rights in ((read, read_rights), (write, handled), (devices, READ_FILE | WRITE_FILE | IOCTL_DEV)):
            for path in paths:
                try:
                    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
                except OSError:
                    continue   # a folder this system does not have
                try:
                    allowed = rights & handled
                    if not os.path.isdir(path):
                        allowed &= FILE_RIGHTS
                    rule = _PathBeneathAttr(allowed, fd)
                    if libc.syscall(ctypes.c_long(add_rule), ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH),
                                    ctypes.byref(rule), ctypes.c_uint32(0)) < 0:
                        raise LandlockError(f"landlock_add_rule({path}) failed: {os.strerror(ctypes.get_errno())}")
                finally:
                    os.close(fd)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise LandlockError(f"prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
        if libc.syscall(ctypes.c_long(restrict_self), ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            raise LandlockError(f"landlock_restrict_self failed: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(ruleset)
    return abi


def apply_rlimits(limits: dict[str, int]) -> None:
    names = {"cpu": resource.RLIMIT_CPU, "as": resource.RLIMIT_AS, "nproc": resource.RLIMIT_NPROC,
             "fsize": resource.RLIMIT_FSIZE, "core": resource.RLIMIT_CORE}
    for key, value in limits.items():
        if value > 0 or key == "core":
            _soft, hard = resource.getrlimit(names[key])
            new = value if hard == resource.RLIM_INFINITY else min(value, hard)
            # CPU: the soft limit sends SIGXCPU (a clear "CPU time limit" exit); the hard one a second later kills
            ceiling = new + 1 if key == "cpu" and (hard == resource.RLIM_INFINITY or new < hard) else new
            resource.setrlimit(names[key], (new, ceiling))


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: launch.py SPEC_JSON -- COMMAND...", file=sys.stderr)
        return 126
    spec = json.loads(argv[1])
    try:
        apply_rlimits({**spec.get("rlimits", {}), "core": 0})
        landlock = spec.get("landlock")
        if landlock is not None:
            restrict(landlock["read"], landlock["write"], landlock["devices"], bool(landlock["network"]))
        os.execv(argv[3], argv[3:])
    except (OSError, ValueError) as exc:
        print(f"sandbox: could not start the command: {exc}", file=sys.stderr)
        return 126
    return 0   # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
