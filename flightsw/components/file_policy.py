"""Which paths a ground command may name: the lexical half of file management's path policy.

Why a pure module: the rule "nothing outside the configured roots" must hold for every string the
ground can send, so it is decided here without touching the disk, and property-tested
(tests/components/test_file_policy.py). The other half, which no lexical rule can do (a symlink
or a device file inside a root, and a path swapped for a symlink between check and use), is done
by ``file_ops`` with ``O_NOFOLLOW`` walks from the root's directory descriptor.

A path names a root first: ``sequences/pass1.seq`` is ``pass1.seq`` under the root called
``sequences``; an absolute path is accepted only when it lies lexically under a root's directory.
``..`` is refused anywhere (never normalised away: ``a/../b`` is a request nobody needs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

MAX_PATH_LEN = 200
MAX_PARTS = 16
#: a file or directory name an operator may use: no control characters, no separators
NAME_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._+-]{0,99}$")
ROOT_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class PathRefused(Exception):
    """A path a file command may not use; the subclass is the reason (its name goes down)."""

    reason = "refused"

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path!r}: {detail}")
        self.path = path
        self.detail = detail


class OutsideRoots(PathRefused):
    """The path leaves the configured roots (``..``, an absolute path elsewhere)."""

    reason = "outside_roots"


class UnknownRoot(PathRefused):
    """The first part names no configured root."""

    reason = "unknown_root"


class BadName(PathRefused):
    """A part is empty, too long, or has characters outside ``NAME_RE`` (NUL, control...)."""

    reason = "bad_name"


class SymlinkRefused(PathRefused):
    """A symbolic link anywhere on the path (found on disk, by ``file_ops``)."""

    reason = "symlink"


class NotARegularFile(PathRefused):
    """A device, FIFO, socket or directory where a regular file is needed (``file_ops``)."""

    reason = "not_regular_file"


class NotADirectoryRefused(PathRefused):
    """A listing of something that is not a directory (``file_ops``)."""

    reason = "not_directory"


class FileMissing(PathRefused):
    """Nothing of that name (``file_ops``)."""

    reason = "missing"


class DestinationExists(PathRefused):
    """A move would replace a file and replacing was not asked for (``file_ops``)."""

    reason = "exists"


class NotVerified(PathRefused):
    """A quarantined file whose SHA-256 does not match the one recorded on arrival (``file_ops``)."""

    reason = "not_verified"


class NotADestination(PathRefused):
    """A move to a root that is not configured as a destination."""

    reason = "not_destination"


class TooLarge(PathRefused):
    """A file above the configured downlink size cap (``file_ops``)."""

    reason = "too_large"


@dataclass(frozen=True)
class FileRef:
    """A checked path: the root's name and the parts under it (empty: the root itself)."""

    root: str
    parts: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else self.root

    def __str__(self) -> str:
        return "/".join((self.root, *self.parts))


def check_root_name(name: str) -> None:
    if not ROOT_NAME_RE.match(name):
        raise ValueError(f"root name {name!r} must match {ROOT_NAME_RE.pattern}")


def check_name(path: str, part: str) -> str:
    """One path part: a plain name (raises :class:`BadName` or :class:`OutsideRoots`)."""
    if part == "..":
        raise OutsideRoots(path, "'..' is not allowed")
    if not NAME_RE.match(part):
        raise BadName(path, f"{part[:40]!r} is not a plain file name ({NAME_RE.pattern})")
    return part


def parse(path: str, roots: Mapping[str, PurePosixPath]) -> FileRef:
    """The root and parts a command's path names; every refusal is a :class:`PathRefused`.

    ``roots`` maps each root's name to its absolute directory (only its text is used here).
    """
    if len(path) > MAX_PATH_LEN:
        raise BadName(path[:40] + "...", f"longer than {MAX_PATH_LEN} characters")
    if "\x00" in path or "\\" in path:
        raise BadName(path, "NUL or backslash in the path")
    if path.startswith("/"):
        pure = PurePosixPath(path)
        if ".." in pure.parts:
            raise OutsideRoots(path, "'..' is not allowed")
        for name, directory in roots.items():
            if pure == directory or directory in pure.parents:
                return _ref(path, name, pure.relative_to(directory).parts)
        raise OutsideRoots(path, "absolute path under no configured root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts:
        raise UnknownRoot(path, f"name a root first ({', '.join(sorted(roots))})")
    if ".." in parts:
        raise OutsideRoots(path, "'..' is not allowed")
    root, *rest = parts
    if root not in roots:
        raise UnknownRoot(path, f"no root {root[:32]!r} (roots: {', '.join(sorted(roots))})")
    return _ref(path, root, tuple(rest))


def _ref(path: str, root: str, parts: tuple[str, ...] | list[str]) -> FileRef:
    if len(parts) > MAX_PARTS:
        raise BadName(path, f"more than {MAX_PARTS} levels")
    return FileRef(root, tuple(check_name(path, p) for p in parts if p != "."))


def lexical_path(ref: FileRef, roots: Mapping[str, PurePosixPath]) -> PurePosixPath:
    """Where ``ref`` points, as text (for events and listings; never opened by this name)."""
    return roots[ref.root].joinpath(*ref.parts)


__all__ = [
    "BadName", "DestinationExists", "FileMissing", "FileRef", "NotADestination", "NotADirectoryRefused",
    "NotARegularFile", "NotVerified", "OutsideRoots", "PathRefused", "SymlinkRefused", "TooLarge",
    "UnknownRoot", "check_name", "check_root_name", "lexical_path", "parse",
]
