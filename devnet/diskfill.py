"""A small disk for one validator, and a way to fill it (disk-full tests and chaos runs).

The data directory becomes a tmpfs of its own; ``Filler`` takes every free byte and keeps
taking what the node frees (the WAL is truncated at every height, LevelDB deletes
compacted files). ``shrink`` first lowers the tmpfs size to what is in use, so a big tmpfs
(a long chaos run writes gigabytes) is filled without writing gigabytes of zeros;
``grow`` gives the space back.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path


def mount_tmpfs(where: Path, size: str) -> str | None:
    """Mount a tmpfs of ``size`` (e.g. ``24m``) at ``where``; None, or why it cannot be done here."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    where.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        return f"mount -t tmpfs failed: {(out.stderr or out.stdout).strip()}"
    return None


def umount(where: Path) -> None:
    for args in (["umount", str(where)], ["umount", "-l", str(where)]):
        if subprocess.run(args, capture_output=True, timeout=30).returncode == 0:
            return


def resize(where: Path, size: str) -> bool:
    """Remount the tmpfs at ``where`` with ``size``; False if the kernel refused (a size
    below what is in use)."""
    out = subprocess.run(["mount", "-o", f"remount,size={size}", str(where)], capture_output=True, timeout=30)
    return out.returncode == 0


def shrink(where: Path, headroom: int = 1 << 20, attempts: int = 5) -> bool:
    """Lower the tmpfs size to what is in use plus ``headroom`` bytes (page-rounded). A node
    under load writes between the reading of the usage and the remount, and the kernel
    refuses a size below what is in use then: read again and retry, with more headroom."""
    for attempt in range(attempts):
        st = os.statvfs(where)
        used = (st.f_blocks - st.f_bfree) * st.f_frsize
        if resize(where, f"{(used + (headroom << attempt)) // 4096 * 4096 + 4096}"):
            return True
    return False


class Filler:
    """Takes every free byte of a file system, and keeps taking what is freed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh = open(path, "wb", buffering=0)  # noqa: SIM115 - closed by free()

    def take(self) -> None:
        for chunk in (1 << 20, 1 << 12):
            while True:
                try:
                    self.fh.write(bytes(chunk))
                except OSError as err:
                    if err.errno != errno.ENOSPC:
                        raise
                    break

    def free(self) -> None:
        self.fh.close()
        self.path.unlink()
