# tecmon service image. Built by deploy/compose.yaml; see deploy/README.md.
#   docker build -t tecmon .
#   docker run -v $PWD/deploy/tecmon.yaml:/etc/tecmon/tecmon.yaml:ro \
#              -v $PWD/deploy/homes:/etc/tecmon/homes:ro --env-file deploy/tecmon.env tecmon

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY alerts ./alerts
COPY device_profiles ./device_profiles
COPY gateway ./gateway
COPY simulator ./simulator
# The same place as a bare-metal install (deploy/systemd/tecmon.service).
RUN python -m venv /opt/tecmon/.venv \
 && /opt/tecmon/.venv/bin/pip install --upgrade pip \
 && /opt/tecmon/.venv/bin/pip install .

FROM python:3.11-slim
# libpq for psycopg when it is installed without its bundled binary.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 tecmon \
 && useradd --system --uid 10001 --gid tecmon --home-dir /var/lib/tecmon --shell /usr/sbin/nologin tecmon \
 && install -d -o tecmon -g tecmon -m 0750 /var/lib/tecmon \
 && install -d -m 0755 /etc/tecmon /etc/tecmon/homes
COPY --from=build /opt/tecmon/.venv /opt/tecmon/.venv
ENV PATH=/opt/tecmon/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /var/lib/tecmon
USER tecmon:tecmon
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["tecmon"]
CMD ["serve", "--config", "/etc/tecmon/tecmon.yaml"]
