# The dronelog image: one image for every dronelog service of docker-compose.yml (ingest,
# scheduler, api, db upgrade, simulate ...); the service's command picks the subcommand.
#
#   docker build -t dronelog:local .
#   docker run --rm dronelog:local --help
#
# docs/operations.md explains how it is run. The build has not been run on the machine where
# this file was written (no Docker engine there); `pip install .` of the same files was.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A system user without a login shell; it owns nothing but the scratch folder below.
RUN groupadd --system --gid 10001 dronelog \
    && useradd --system --uid 10001 --gid dronelog --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin dronelog

# The package (dronelog and simulators, with the migrations as package data), installed
# from a copy that is removed again: at run time only the installed package is imported.
COPY pyproject.toml README.md /tmp/src/
COPY dronelog /tmp/src/dronelog
COPY simulators /tmp/src/simulators
RUN pip install /tmp/src && rm -rf /tmp/src

# What the package does not contain: the dashboards the API serves, the scenarios the
# simulator and `dronelog sites import` read, and the turnaround policies for reference
# (the built-in defaults are the same as config/turnaround.toml).
WORKDIR /app
COPY dashboards /app/dashboards
COPY scenarios /app/scenarios
COPY config /app/config
# `dronelog simulate run` writes its ground truth to .dronelog/ in the working directory.
RUN mkdir /app/.dronelog && chown dronelog:dronelog /app/.dronelog

# The installed package cannot find dashboards/ beside itself; the API must listen on every
# interface of the container to be reachable; logs as one JSON object per line.
ENV DRONELOG_DASHBOARDS_DIR=/app/dashboards \
    DRONELOG_API_HOST=0.0.0.0 \
    DRONELOG_LOG_FORMAT=json

USER dronelog
EXPOSE 8080
ENTRYPOINT ["dronelog"]
CMD ["--help"]
