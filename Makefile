# The two commands of the README's quick start, each setting up .venv on first use.
#   make serve   start the web server with the shipped model on http://127.0.0.1:8000
#   make test    lint, format check and the whole test suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: serve test lint lock clean chromium data

# Writes requirements-serve.lock from pip's install report (every package but ours).
define SERVE_LOCK
import json, sys
report = json.load(open(sys.argv[1]))
pins = sorted((i["metadata"]["name"], i["metadata"]["version"]) for i in report["install"])
print("# What serving needs and nothing more: rechroma[serve], at requirements.lock's versions.")
print("# The Docker image installs this. Regenerate with: make lock")
print("\n".join(f"{n}=={v}" for n, v in sorted(pins, key=lambda p: p[0].lower()) if n != "rechroma"))
endef
export SERVE_LOCK

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	# LPIPS's linear weights ship in the lpips wheel; --no-deps keeps its torchvision out.
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps lpips==0.1.4
	touch $@

serve: $(STAMP)
	$(BIN)/rechroma serve --host $(HOST) --port $(PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint chromium
	$(BIN)/pytest

# The browser tests drive Debian's chromium through Playwright (Playwright's own browser
# downloads are not used); installed here on first use, as root or through sudo.
chromium:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The v3 training shards (configs/v3.toml) from the public photo collections listed in
# ../shared/data/more-photos/sources.json, read from their bare Git directories in MIRRORS
# (one per repository, named OWNER+NAME). Deterministic: the same mirrors give the same shards.
MIRRORS ?= ../.mirror
data: $(STAMP)
	$(BIN)/rechroma prepare-collections $(MIRRORS) .data/more-photos

# Refresh the lock after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/pip install --quiet -e '.[serve,train,dev,cluster]'
	{ echo "# Exact versions the project is tested with: every extra (serve, train, dev, cluster)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/pip freeze --exclude-editable --exclude lpips; } > requirements.lock
	# The Docker image's lock: what rechroma[serve] resolves to at those versions.
	grep -v '^#' requirements.lock > $(VENV)/constraints.txt
	$(BIN)/pip install --quiet --dry-run --ignore-installed -c $(VENV)/constraints.txt \
	  '.[serve]' --report $(VENV)/serve-report.json
	$(BIN)/python -c "$$SERVE_LOCK" $(VENV)/serve-report.json > requirements-serve.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
