# syntax=docker/dockerfile:1
# The project's one image, for every process of docker-compose.yml: the pipeline (`dvc repro`),
# the MLflow server, and `fraud score|api|monitor|replay`. Its packages are those of `make
# install`: requirements.lock, every file checked against its hash.
FROM python:3.11.14-slim-bookworm

# The Makefile's UV_VERSION (tests/integration/test_compose.py keeps the two equal).
ARG UV_VERSION=0.13.9

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1

RUN python -m pip install --no-cache-dir "uv==${UV_VERSION}" \
 && uv venv --python /usr/local/bin/python3.11 "$VIRTUAL_ENV"

# Dependencies before the code, so that a change to the code alone reuses this layer. Byte code
# is compiled here: the processes run as a user who cannot write to the virtual environment.
COPY requirements.lock /tmp/requirements.lock
RUN uv pip sync --python "$VIRTUAL_ENV/bin/python" --require-hashes --compile-bytecode \
      /tmp/requirements.lock \
 && rm /tmp/requirements.lock

# A user of its own; /app/data, /mlartifacts and /mlflow-auth (the MLflow server's logins) are
# where compose mounts named volumes, and a new volume takes the owner of the folder it is
# mounted on.
RUN useradd --create-home --uid 10001 app \
 && mkdir -p /app/data /mlartifacts /mlflow-auth \
 && chown app:app /app /app/data /mlartifacts /mlflow-auth
WORKDIR /app
COPY --chown=app:app . .

# The project itself (the `fraud` command), without dependencies: they all come from the lock.
# DVC runs without git here (.git is not in the image): `core.no_scm` tells it so, and the
# pipeline then tags its versions with git_commit "unknown".
RUN uv pip install --python "$VIRTUAL_ENV/bin/python" --no-deps --editable . \
 && printf '[core]\n    no_scm = true\n' > .dvc/config.local \
 && chown app:app .dvc/config.local

USER app
CMD ["fraud", "--help"]
