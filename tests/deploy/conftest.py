"""Fixtures of the deploy tests; the helpers live in deploy_support (a unique module name, so
pytest's per-folder imports cannot pick another folder's conftest)."""

import os

from deploy_support import bench  # noqa: F401  (fixture)

# The real install path (root, network, about a minute) runs in `make install-test`, not `make test`.
collect_ignore = [] if os.environ.get("FLIGHTSW_INSTALL_TEST") == "1" else ["test_install_real_path.py"]
