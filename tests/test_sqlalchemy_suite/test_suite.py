"""SQLAlchemy's dialect compliance suite; what lakesql cannot do is stated in
lakesql/sqlalchemy/requirements.py."""

from sqlalchemy.testing.suite import *  # noqa: F403
