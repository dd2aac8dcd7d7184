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

# The package (dronelog and dronelog_sim, with the migrations, the dashboards, the scenarios,
# the policies and the JSON Schemas as package data: dronelog/shipped/ links to the folders
# copied beside it), installed from a copy that is removed again: at run time only the
# installed package is imported (docs/packaging.md).
COPY pyproject.toml README.md LICENSE /tmp/src/
COPY dronelog /tmp/src/dronelog
COPY dronelog_sim /tmp/src/dronelog_sim
COPY dashboards /tmp/src/dashboards
COPY scenarios /tmp/src/scenarios
COPY config /tmp/src/config
COPY docs/schemas /tmp/src/docs/schemas
RUN pip install /tmp/src && rm -rf /tmp/src

# The scenarios and policies again as files to read and edit beside the commands of
# docker-compose.yml (`sites import scenarios/pingdu.toml`, DRONELOG_POLICY_FILE=...).
WORKDIR /app
COPY scenarios /app/scenarios
COPY config /app/config
# DRONELOG_HOME: the ground truth of `dronelog simulate run` and bridge outboxes go there.
RUN mkdir /app/.dronelog && chown dronelog:dronelog /app/.dronelog

# The API must listen on every interface of the container to be reachable; logs as one JSON
# object per line.
ENV DRONELOG_HOME=/app/.dronelog \
    DRONELOG_API_HOST=0.0.0.0 \
    DRONELOG_LOG_FORMAT=json

USER dronelog
EXPOSE 8080
ENTRYPOINT ["dronelog"]
CMD ["--help"]
