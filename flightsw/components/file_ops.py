"""File operations behind file management's commands: blocking, run on the component's worker.

Why descriptor walks: a path checked by name and then used by name can be swapped for a symlink
in between. Every operation here opens the root's directory and then each part with
``O_NOFOLLOW`` relative to the previous descriptor, checks the *opened* object (``fstat``), and
acts through descriptors (``dir_fd``), so what was checked is what is used. A hard link of a
checked file is compared with the checked inode before it is trusted.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from flightsw.components.file_policy import (
    DestinationExists,
    FileMissing,
    FileRef,
    NotADirectoryRefused,
    NotARegularFile,
    NotVerified,
    PathRefused,
    SymlinkRefused,
    TooLarge,
)

META_SUFFIX = ".meta.json"  # written beside a quarantined file by the CFDP entity
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block open


@dataclass(frozen=True)
class Entry:
    """One listed directory entry (``kind``: file, dir, symlink, other)."""

    name: str
    kind: str
    size: int
    mtime: float

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "size": self.size, "mtime": round(self.mtime, 3)}


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    return "other"


def _refusal_for(ref: FileRef, name: str, dir_fd: int, exc: OSError, want_dir: bool) -> PathRefused:
    """Classify an ``open`` that failed under ``O_NOFOLLOW`` by what is really there."""
    if exc.errno == errno.ENOENT:
        return FileMissing(str(ref), f"{name} does not exist")
    try:
        mode = os.lstat(name, dir_fd=dir_fd).st_mode
    except OSError:
        return FileMissing(str(ref), f"{name} does not exist")
    if stat.S_ISLNK(mode):
        return SymlinkRefused(str(ref), f"{name} is a symbolic link")
    if want_dir:
        return NotADirectoryRefused(str(ref), f"{name} is not a directory")
    return NotARegularFile(str(ref), f"{name} is a {_kind(mode)}, not a regular file")


@contextlib.contextmanager
def _opened(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def open_dir(roots: Mapping[str, Path], ref: FileRef, parts: tuple[str, ...] | None = None) -> int:
    """A descriptor of the directory ``ref`` (or of ``parts`` under its root), never via a link."""
    fd = os.open(roots[ref.root], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in ref.parts if parts is None else parts:
        try:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            refusal = _refusal_for(ref, part, fd, exc, want_dir=True)
            os.close(fd)
            raise refusal from None
        os.close(fd)
        fd = nxt
    return fd


def open_file(roots: Mapping[str, Path], ref: FileRef) -> tuple[int, int, os.stat_result]:
    """(parent directory fd, file fd, its stat) for a regular file; the caller closes both."""
    if not ref.parts:
        raise NotARegularFile(str(ref), "a root is a directory")
    parent = open_dir(roots, ref, ref.parts[:-1])
    try:
        fd = os.open(ref.name, _FILE_FLAGS, dir_fd=parent)
    except OSError as exc:
        refusal = _refusal_for(ref, ref.name, parent, exc, want_dir=False)
        os.close(parent)
        raise refusal from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        os.close(parent)
        raise NotARegularFile(str(ref), f"{ref.name} is a {_kind(st.st_mode)}, not a regular file")
    return parent, fd, st


def list_dir(roots: Mapping[str, Path], ref: FileRef, limit: int) -> tuple[list[Entry], int]:
    """Up to ``limit`` entries sorted by name, and how many there are in all. Links are listed
    as links (``lstat``), never followed."""
    with _opened(open_dir(roots, ref)) as fd:
        names = sorted(os.listdir(fd))
        entries = []
        for name in names[:limit]:
            try:
                st = os.lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue  # removed while listing
            entries.append(Entry(name, _kind(st.st_mode), st.st_size, st.st_mtime))
        return entries, len(names)


def delete(roots: Mapping[str, Path], ref: FileRef) -> int:
    """Remove a regular file (its quarantine metadata too); returns its size.

    The file is opened ``O_NOFOLLOW`` and checked first; a link that replaces it between the
    check and the unlink is removed itself (unlink never follows a link), nothing else.
    """
    parent, fd, st = open_file(roots, ref)
    with _opened(parent), _opened(fd):
        os.unlink(ref.name, dir_fd=parent)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(ref.name + META_SUFFIX, dir_fd=parent)
        os.fsync(parent)
    return st.st_size


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    while block := os.read(fd, 1 << 16):
        digest.update(block)
    return digest.hexdigest()


def link_checked(parent: int, name: str, st: os.stat_result, dest_dir: int, dest_name: str) -> None:
    """Hard-link ``name`` as ``dest_name`` and make sure the link is the inode that was checked
    (the name may have been swapped meanwhile); ``FileExistsError`` if ``dest_name`` exists."""
    os.link(name, dest_name, src_dir_fd=parent, dst_dir_fd=dest_dir, follow_symlinks=False)
    linked = os.lstat(dest_name, dir_fd=dest_dir)
    if (linked.st_dev, linked.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(linked.st_mode):
        os.unlink(dest_name, dir_fd=dest_dir)
        raise SymlinkRefused(name, "the file was replaced while it was being moved")


def move_verified(roots: Mapping[str, Path], source: FileRef, dest: FileRef, replace: bool) -> tuple[int, str]:
    """Move a quarantined upload to ``dest`` after checking its SHA-256 against its metadata.

    Returns (size, sha256). Atomic at the destination: a new name appears complete or not at all;
    with ``replace`` an existing file is swapped for the new one in one rename. The quarantined
    file and its metadata are removed only once the destination is durable.
    """
    parent, fd, st = open_file(roots, source)
    with _opened(parent), _opened(fd):
        try:
            meta_fd = os.open(source.name + META_SUFFIX, _FILE_FLAGS, dir_fd=parent)
        except OSError as exc:
            raise NotVerified(str(source), "no arrival record (.meta.json) beside it") from exc
        with _opened(meta_fd):
            try:
                meta = json.loads(os.read(meta_fd, 1 << 16))
                expected = str(meta["sha256"])
            except (ValueError, KeyError, TypeError) as exc:
                raise NotVerified(str(source), f"unreadable arrival record: {exc}") from None
        actual = _sha256(fd)
        if actual != expected:
            raise NotVerified(str(source), f"SHA-256 {actual[:16]} differs from the arrival record {expected[:16]}")
        with _opened(open_dir(roots, dest, dest.parts[:-1])) as dest_dir:
            exists = _exists(dest.name, dest_dir)
            if exists and not replace:
                raise DestinationExists(str(dest), "a file of that name exists (move with replace=true)")
            temp = f".{dest.name}.incoming"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dest_dir)
            try:
                link_checked(parent, source.name, st, dest_dir, temp)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_into(fd, dest_dir, temp)
            if replace:
                os.replace(temp, dest.name, src_dir_fd=dest_dir, dst_dir_fd=dest_dir)
            else:
                try:  # no-overwrite even if a file appeared since the check
                    os.link(temp, dest.name, src_dir_fd=dest_dir, dst_dir_fd=dest_dir, follow_symlinks=False)
                except FileExistsError:
                    os.unlink(temp, dir_fd=dest_dir)
                    raise DestinationExists(str(dest), "a file of that name appeared") from None
                os.unlink(temp, dir_fd=dest_dir)
            os.fsync(dest_dir)
        os.unlink(source.name, dir_fd=parent)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(source.name + META_SUFFIX, dir_fd=parent)
        os.fsync(parent)
    return st.st_size, actual


def _exists(name: str, dir_fd: int) -> bool:
    try:
        mode = os.lstat(name, dir_fd=dir_fd).st_mode
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(mode):
        raise NotARegularFile(name, f"the destination is a {_kind(mode)}")
    return True


def _copy_into(fd: int, dest_dir: int, name: str) -> None:
    """Copy an open file into ``dest_dir`` (another file system: no hard link), fsynced."""
    os.lseek(fd, 0, os.SEEK_SET)
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                  dir_fd=dest_dir)
    with _opened(out):
        while block := os.read(fd, 1 << 16):
            os.write(out, block)
        os.fsync(out)


def snapshot(roots: Mapping[str, Path], ref: FileRef, spool: Path, spool_name: str, max_bytes: int) -> int:
    """Hard-link a checked regular file into ``spool`` (same file system as the data directory)
    so the downlink reads exactly the inode that was checked; returns its size."""
    parent, fd, st = open_file(roots, ref)
    with _opened(parent), _opened(fd):
        if st.st_size > max_bytes:
            raise TooLarge(str(ref), f"{st.st_size} B above the downlink limit of {max_bytes} B")
        spool.mkdir(parents=True, exist_ok=True)
        with _opened(os.open(spool, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)) as spool_fd:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spool_name, dir_fd=spool_fd)
            try:
                link_checked(parent, ref.name, st, spool_fd, spool_name)
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
                _copy_into(fd, spool_fd, spool_name)
    return st.st_size


__all__ = ["Entry", "META_SUFFIX", "delete", "link_checked", "list_dir", "move_verified", "open_dir",
           "open_file", "snapshot"]
