"""Feature tables: definitions in the catalog, and the one point-in-time lookup."""
