"""The lexical path policy of file management: nothing outside the configured roots, ever."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flightsw.components import file_policy
from flightsw.components.file_policy import BadName, FileRef, OutsideRoots, PathRefused, UnknownRoot

ROOTS = {"sequences": PurePosixPath("/data/uploads/sequences"), "configs": PurePosixPath("/data/uploads/configs"),
         "quarantine": PurePosixPath("/data/cfdp/quarantine")}


def test_root_relative_and_absolute_paths_name_the_same_file() -> None:
    assert file_policy.parse("sequences/pass1.seq", ROOTS) == FileRef("sequences", ("pass1.seq",))
    assert file_policy.parse("/data/uploads/sequences/pass1.seq", ROOTS) == FileRef("sequences", ("pass1.seq",))
    assert file_policy.parse("quarantine", ROOTS) == FileRef("quarantine", ())


@pytest.mark.parametrize(("path", "reason"), [
    ("sequences/../../etc/passwd", OutsideRoots),
    ("../sequences/x", OutsideRoots),
    ("sequences/a/../b", OutsideRoots),
    ("/etc/passwd", OutsideRoots),
    ("/data/uploads/sequences/../../../etc/shadow", OutsideRoots),
    ("/data/uploads", OutsideRoots),  # the parent of two roots is no root
    ("etc/passwd", UnknownRoot),
    ("", UnknownRoot),
    ("sequences/.hidden", BadName),
    ("sequences/a\x00b", BadName),
    ("sequences\\..\\x", BadName),
    ("sequences/" + "x" * 300, BadName),
])
def test_paths_leaving_the_roots_are_refused_with_their_reason(path: str, reason: type[PathRefused]) -> None:
    with pytest.raises(reason) as caught:
        file_policy.parse(path, ROOTS)
    assert caught.value.reason == reason.reason


def _inside(path: PurePosixPath, root: PurePosixPath) -> bool:
    return path == root or root in path.parents


parts = st.sampled_from(["..", ".", "", "a", "b.seq", "sequences", "configs", "quarantine", "data", "uploads",
                         "cfdp", "etc", "passwd", "x\x00", "..x", "~", "-", "/", "//"])


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.lists(parts, max_size=8).map("/".join), st.text(max_size=60)), st.booleans())
def test_nothing_outside_the_roots_is_ever_accepted(path: str, absolute: bool) -> None:
    """Whatever string the ground sends, an accepted path resolves (lexically, with ``..``
    collapsed as the kernel would) to its root or below, and contains no ``..`` part."""
    path = "/" + path if absolute else path
    try:
        ref = file_policy.parse(path, ROOTS)
    except PathRefused:
        return
    assert ".." not in ref.parts and all(file_policy.NAME_RE.match(p) for p in ref.parts)
    target = file_policy.lexical_path(ref, ROOTS)
    # collapse like the kernel would if a ".." had slipped through
    import posixpath

    normalised = PurePosixPath(posixpath.normpath(str(target)))
    assert _inside(normalised, ROOTS[ref.root])
    if path.startswith("/"):
        assert _inside(PurePosixPath(posixpath.normpath(path)), ROOTS[ref.root])
