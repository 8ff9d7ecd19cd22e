# Placeholder until the daemon lands (issue #3): the image serves the built-in sandbox.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY syncwatch ./syncwatch
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --no-create-home syncwatch
USER 10001
EXPOSE 8900
ENTRYPOINT ["syncwatch"]
CMD ["sandbox", "--listen", "0.0.0.0:8900"]
