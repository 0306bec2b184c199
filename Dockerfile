# The one application image: portal (default CMD), workers (`python worker.py --role workflows`,
# `--role activities`) and migrations (`python -m portnet.cli migrate`) differ only by their command;
# see docker-compose.yml.
FROM python:3.11-slim

# Production unless told otherwise: the portal and the worker then refuse to start on public default
# secrets, insecure cookies or the sandboxes (portnet/production.py). docker-compose.yml passes the
# secrets; a local trial of the image needs PORTNET_ENV=development.
ENV PORTNET_ENV=production \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# DejaVu Sans draws the Arabic receipts and invoices (portnet/documents/layout.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

# Dependencies first, from pyproject.toml alone, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
RUN pip install . \
    && useradd --system --no-create-home --home-dir /app --shell /usr/sbin/nologin portnet \
    && mkdir -p /app/var \
    && chown portnet:portnet /app/var

# The code stays root-owned (read-only to the app); only var/ is writable.
USER portnet

EXPOSE 8000
CMD ["uvicorn", "web.app:create_app", "--factory", "--host", "0.0.0.0", "--port", "8000"]
