# syntax=docker/dockerfile:1
#
# The sensorpipe image: one image for every sensorpipe process of deploy/docker-compose.yml (init, bridge,
# stream job, simulator) and for the Spark master and workers, which must run the same Python and
# sensorpipe as the driver because the stream job's database sink runs on them (`mapInArrow`).
#
#   docker build -t sensorpipe:0.1.0 .
#   docker run --rm sensorpipe:0.1.0 config show
#
# Build stage: a JDK and Maven resolve the pinned jar set (`sensorpipe jars fetch`, problem 1 of docs/design.md)
# at build time, so no container downloads a jar at run time. Runtime stage: Python, a JRE and procps
# (Spark's launch scripts call `ps`), the virtual environment and the jars, run as a non-root user.
# Both stages use the same Python base, so the venv's interpreter path is the same in both.

FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    SENSORPIPE_STACK_CACHE_DIR=/opt/sensorpipe/cache \
    PATH=/opt/sensorpipe/venv/bin:$PATH

# /usr/share/man/man1: the JDK's post-install step links its man pages there, and slim images lack it.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jdk-headless maven \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/sensorpipe/venv

WORKDIR /src

# The pinned dependencies first, in a layer of their own: editing the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

COPY src ./src
RUN pip install --no-deps . && sensorpipe --help > /dev/null

# Every pinned jar set, into $SENSORPIPE_STACK_CACHE_DIR/jars/<set>-<fingerprint of its POM>/. Maven's own
# repository is a build cache only: a rebuild after a code change does not download the jars again, and
# builds of the same image for several compose services take turns with it.
RUN --mount=type=cache,target=/root/.m2,sharing=locked sensorpipe jars fetch


FROM python:3.11.14-slim-bookworm AS runtime

RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 sensorpipe \
    && useradd --system --uid 10001 --gid sensorpipe --home-dir /var/lib/sensorpipe --create-home \
        --shell /usr/sbin/nologin sensorpipe

# Owned by root: the sensorpipe user runs the code and reads the jars, and changes neither.
COPY --from=build /opt/sensorpipe/venv /opt/sensorpipe/venv
COPY --from=build /opt/sensorpipe/cache/jars /opt/sensorpipe/cache/jars

ENV PATH=/opt/sensorpipe/venv/bin:$PATH \
    SENSORPIPE_STACK_CACHE_DIR=/opt/sensorpipe/cache \
    PYSPARK_PYTHON=/opt/sensorpipe/venv/bin/python \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# Where the compose file's `init` service writes Grafana's and Prometheus' provisioning: a named volume
# mounted here for the first time takes this directory's owner, so the non-root user can write into it.
RUN mkdir -p /provisioning/grafana /provisioning/prometheus \
    && chown sensorpipe:sensorpipe /provisioning/grafana /provisioning/prometheus

USER sensorpipe
WORKDIR /var/lib/sensorpipe

# Fails the build when the baked jars do not fit the installed pyspark (or are missing).
RUN sensorpipe jars check

ENTRYPOINT ["sensorpipe"]
CMD ["--help"]
