"""Bootstraps SQLAlchemy's pytest plugin for its dialect compliance suite.

Only active in the suite's own pytest process (LAKESQL_SQLA_SUITE=1, started by
tests/test_sqlalchemy_compliance.py); the main test run ignores this folder.
"""

import os

if os.environ.get("LAKESQL_SQLA_SUITE"):
    import pytest

    pytest.register_assert_rewrite("sqlalchemy.testing.assertions")

    from sqlalchemy.testing.plugin.pytestplugin import *  # noqa: F403
else:
    collect_ignore_glob = ["*"]
