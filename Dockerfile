# segtrack for the API and the GPU workers (one image; the command picks the role). Both run as
# the unprivileged user `segtrack` (uid 1000), never as root; the code is installed by root and
# stays read-only to it, only /data (datasets, artifacts, the SQLite file) is its own.
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

ARG SEGTRACK_UID=1000
RUN groupadd --gid "${SEGTRACK_UID}" segtrack \
    && useradd --uid "${SEGTRACK_UID}" --gid segtrack --create-home --shell /usr/sbin/nologin segtrack \
    && mkdir -p /data/datasets /data/artifacts \
    && chown -R segtrack:segtrack /data

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
# A named volume first mounted on /data/artifacts starts with the ownership set above; relative
# paths (`segtrack train --out runs/...`) land in /data too.
USER segtrack
WORKDIR /data
EXPOSE 8000
# 0.0.0.0 inside the container, so a published port reaches it; the server refuses to listen there
# without accounts (see docker-compose.yml for creating the first admin).
CMD ["segtrack", "serve", "--host", "0.0.0.0", "--port", "8000"]
