# One image per function: docker build --build-arg FUNCTION=risk-scoring -t kades/risk-scoring .
# (`make images` builds them all). The shared package is installed, not copied beside the
# function, because functions-framework puts only the function's folder on the import path.
# The shared package as a wheel, built where there is a C compiler (the full image; the slim
# one has none): the temporal modules every point runs through, and the chain modules every
# record does, are compiled by Cython (shared/setup.py). Both images are the same Debian and CPython 3.11, so the compiled
# modules run in the slim one.
FROM python:3.11 AS shared-wheel
COPY requirements/build.lock /src/requirements/build.lock
# The tools from the lock alone: setuptools writes the archive with an installed `wheel`
# package before the copy inside it, and the image's own is in no lock.
RUN pip uninstall --yes wheel \
 && pip install --no-cache-dir --require-hashes -r /src/requirements/build.lock
COPY shared/ /src/shared/
RUN pip wheel --no-deps --no-build-isolation --no-cache-dir --wheel-dir /wheels /src/shared

FROM python:3.11-slim

ARG FUNCTION
RUN test -n "$FUNCTION" || { echo "build with --build-arg FUNCTION=<functions/ folder name>" >&2; exit 1; }

# MALLOC_ARENA_MAX: two malloc arenas instead of eight per core keep a threaded server's
# resident memory from creeping up (see shared/kades/dev/localrun.py, docs/reliability.md).
# OPENBLAS/OMP threads: numpy's BLAS starts a thread per CPU of the node, not of the
# container's limit, and a matrix product (the api's predictions) then spent the whole CPU
# quota at once: the container throttled, probes and WebSockets with it.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    OPENBLAS_NUM_THREADS=1 \
    OMP_NUM_THREADS=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# The function's lock first (this layer is reused until requirements/ changes): every
# package at its locked version, each file checked against its hash (requirements/README.md).
COPY requirements/ requirements/
RUN pip install --require-hashes -r "requirements/functions/${FUNCTION}.lock"
COPY --from=shared-wheel /wheels/ /tmp/wheels/
# optional in shared/setup.py, the compiled modules are checked here: built, and loading in
# this image (a failed build would ship the slower code; one that does not load, no function)
RUN pip install --no-deps /tmp/wheels/kades-*.whl && rm -rf /tmp/wheels \
 && python -c 'from kades.compiled import running_from_source as r; assert not r(), r()'
COPY functions/${FUNCTION}/main.py function/main.py

RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin kades
# Numeric, so that Kubernetes can check runAsNonRoot.
USER 10001

# kades.runtime.serve (functions-framework with JSON log lines from the first) reads these;
# Knative sets PORT=8080 too. THREADS/WORKERS come from the Service (THREADS =
# containerConcurrency + 4 spare threads for the probes, see shared/kades/manifests.py).
ENV FUNCTION_TARGET=handle \
    FUNCTION_SOURCE=/app/function/main.py \
    FUNCTION_SIGNATURE_TYPE=http \
    PORT=8080
EXPOSE 8080
CMD ["python", "-m", "kades.runtime.serve"]
