"""SQLAlchemy dialect for lakesql: ``create_engine("lakesql:///path/to/warehouse")``.

Registered as the ``lakesql`` entry point of ``sqlalchemy.dialects``; importing this package
needs SQLAlchemy 2 (``pip install 'lakesql[sqlalchemy]'``).
"""

from lakesql.sqlalchemy.base import LakeSQLDialect, dialect

__all__ = ["LakeSQLDialect", "dialect"]
