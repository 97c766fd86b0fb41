FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SHORTENER_CONFIG=/app/config/shortener.toml \
    SHORTENER_DATA_DIR=/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shortener ./shortener
COPY config ./config
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data --create-home shortener

USER shortener
VOLUME ["/data"]
EXPOSE 8000
ENTRYPOINT ["shortener"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
