# syncwatch: the monitoring daemon. Mount your config at /etc/syncwatch/syncwatch.yaml (it may
# name probe templates in /etc/syncwatch/probes, where the shipped ones are) and keep the
# database on the volume: `database: /var/lib/syncwatch/syncwatch.db`, `listen: 0.0.0.0:9851`.
# Secrets come from the environment or mounted files ({env: NAME} / {file: PATH} in the config).

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/syncwatch
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncwatch ./syncwatch
# The wheel installs the runbooks under /opt/syncwatch/share/syncwatch/runbooks (/runbooks/<cause>),
# and the demo config, probe templates and scenarios beside them (`syncwatch simulate`'s defaults).
COPY runbooks ./runbooks
COPY config/demo.yaml ./config/
COPY probes ./probes
RUN /opt/syncwatch/bin/pip install .

FROM python:3.11-slim
ENV PATH=/opt/syncwatch/bin:$PATH PYTHONUNBUFFERED=1
COPY --from=build /opt/syncwatch /opt/syncwatch
COPY probes/*.yaml /etc/syncwatch/probes/
COPY config/syncwatch.example.yaml /etc/syncwatch/
RUN useradd --system --uid 10001 --no-create-home syncwatch \
    && mkdir -p /var/lib/syncwatch \
    && chown 10001:10001 /var/lib/syncwatch
USER 10001
VOLUME /var/lib/syncwatch
EXPOSE 9851
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9851/healthz', timeout=4)"]
ENTRYPOINT ["syncwatch"]
CMD ["run", "--config", "/etc/syncwatch/syncwatch.yaml"]
