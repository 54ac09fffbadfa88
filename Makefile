PY ?= python

.PHONY: check lint typecheck test slow stress bench

check: lint typecheck test

lint:
	ruff check lakesql tests benchmarks udfs
	ruff format --check lakesql tests benchmarks udfs
	lint-imports

typecheck:
	mypy lakesql

test:
	pytest

slow:
	pytest -m slow

# Proof under stress (docs/reliability.md): the whole sqllogictest corpus through lakesql and
# DuckDB, 24 SIGKILLs during writes, concurrent writers, a long grammar fuzz.
stress:
	pytest -m slow tests/sqllogictest tests/test_stress_crash.py \
		tests/test_stress_concurrency.py tests/test_bad_input_fuzz.py

bench:
	$(PY) benchmarks/delta_scan.py
