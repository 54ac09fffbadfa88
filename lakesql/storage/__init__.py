"""Delta Lake storage: the only package that imports deltalake."""
