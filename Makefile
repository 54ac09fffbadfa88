PY ?= python

.PHONY: check lint typecheck test slow stress bench

check: lint typecheck test

lint:
	ruff check lakesql tests benchmarks udfs
	ruff format --check lakesql tests benchmarks udfs

typecheck:
	mypy lakesql

test:
	pytest

slow:
	pytest -m slow

stress:
	pytest -m slow tests

bench:
	$(PY) benchmarks/delta_scan.py
