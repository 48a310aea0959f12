# Linkwell: `make up` runs the whole network, `make test` runs every test.
PYTHON ?= python3
UV := .tools/bin/uv

.PHONY: up test unit bench schemas lint clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --all-packages --frozen --quiet
	touch $@

up: .venv/.synced
	$(UV) run --frozen linkwell up

test: .venv/.synced lint
	$(UV) run --frozen pytest

unit: .venv/.synced
	$(UV) run --frozen pytest -m "not integration and not e2e"

bench: .venv/.synced
	$(UV) run --frozen python bench/e2e.py
	$(UV) run --frozen python bench/intake.py
	$(UV) run --frozen python bench/capacity.py
	$(UV) run --frozen python bench/deliveries.py
	$(UV) run --frozen python bench/match_scale.py
	$(UV) run --frozen python bench/match_quality.py

schemas: .venv/.synced
	$(UV) run --frozen python -m linkwell_schemas.jsonschema

lint: .venv/.synced
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

clean:
	rm -rf data .venv .tools
