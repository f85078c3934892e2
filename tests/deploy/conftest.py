"""Fixtures of the deploy tests; the helpers live in deploy_support (a unique module name, so
pytest's per-folder imports cannot pick another folder's conftest)."""

from deploy_support import bench  # noqa: F401  (fixture)
