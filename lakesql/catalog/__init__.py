"""The warehouse catalog: schemas and tables as folders, other objects as JSON documents."""

from lakesql.catalog.warehouse import TableRef, Warehouse, validate_name

__all__ = ["TableRef", "Warehouse", "validate_name"]
