# segtrack for the API and the GPU workers (one image; the command picks the role).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# torch with CUDA from PyTorch's index; the project's own range accepts it.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
RUN pip install --no-cache-dir torch --index-url "${TORCH_INDEX_URL}"

COPY pyproject.toml README.md alembic.ini ./
COPY trainer trainer
COPY segtrack segtrack
COPY server server
COPY worker worker
COPY migrations migrations
COPY web web
RUN pip install --no-cache-dir -e .

ENV NO_ALBUMENTATIONS_UPDATE=1 \
    SEGTRACK_DATA_DIR=/data \
    PYTHONUNBUFFERED=1
EXPOSE 8000
CMD ["segtrack", "serve", "--host", "0.0.0.0", "--port", "8000"]
