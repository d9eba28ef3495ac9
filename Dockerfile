# The Panoptic suite in one image; the command picks the process (docker-compose.yml):
# `migrate`, `indexer`, `retriever`, `gateway` or `dashboard`. Healthchecks are per service, in
# compose.
#
# Both stages use the same base image, so the venv's interpreter links stay valid when the
# venv is copied from the builder to the runtime stage.
ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim

# --- explorer-files: swagger-ui-dist from npm, as package-lock.json pins it -------------------
# Only the runtime dependencies (not buf), and no install scripts: Swagger UI needs none, and its
# dependency's would report the install elsewhere.
FROM ${NODE_IMAGE} AS explorer-files
WORKDIR /npm
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error

# --- builder: installs the distribution and its dependencies into a venv ---------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

RUN python -m venv /opt/panoptic

WORKDIR /src
# Only what the distribution is built from: no .venv, .data, node_modules or .git in the image
# (services/gateway/static/vendor/, if the checkout has it, is copied in anew below).
COPY pyproject.toml README.md ./
COPY panoptic ./panoptic
COPY services ./services
COPY migrations ./migrations
# Swagger UI's files for the gateway's /docs go into its package before the build, as
# `make setup` puts them in a checkout, so that the installed package carries them.
COPY --from=explorer-files /npm/node_modules/swagger-ui-dist /tmp/swagger-ui-dist
RUN python -m services.gateway.explorer_files /tmp/swagger-ui-dist
RUN /opt/panoptic/bin/pip install . \
    && /opt/panoptic/bin/panoptic --help > /dev/null \
    && cd / && /opt/panoptic/bin/python -c \
        'from services.gateway.explorer import Explorer; assert Explorer.load().available'

# --- runtime: the venv, a non-root user and nothing else -------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# A container is reached through its network interfaces, never its loopback, so the services
# listen on every interface here (the code's default, 127.0.0.1, suits a developer's machine).
ENV PATH=/opt/panoptic/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PANOPTIC_BIND_HOST=0.0.0.0 \
    PANOPTIC_DATA_DIR=/var/lib/panoptic

RUN groupadd --system --gid 10001 panoptic \
    && useradd --system --uid 10001 --gid panoptic --no-log-init \
        --home-dir /var/lib/panoptic --create-home --shell /usr/sbin/nologin panoptic

COPY --from=builder /opt/panoptic /opt/panoptic

USER 10001:10001
WORKDIR /var/lib/panoptic

# gRPC indexer and retriever, the REST gateway, the dashboard, then their Prometheus metrics.
EXPOSE 50051 50052 8080 8081 9101 9102 9103 9104

ENTRYPOINT ["panoptic"]
CMD ["--help"]
