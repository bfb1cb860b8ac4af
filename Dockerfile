# The service's image, for compose.yaml (and any container platform).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir . \
    && useradd --system afterhours && mkdir /data && chown afterhours /data
USER afterhours
EXPOSE 8000
CMD ["afterhours", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
