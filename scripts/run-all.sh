#!/usr/bin/env bash
# Runs every process of the product on this machine (simulator, Celery worker and beat, web) and
# stops them all together on Ctrl-C or when any of them exits.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM

$PY manage.py simulator &
.venv/bin/celery -A aistatus worker -Q celery,probes.default --pool threads --concurrency 8 --loglevel WARNING &
.venv/bin/celery -A aistatus beat --loglevel WARNING &
echo "Status page: http://${HOST:-127.0.0.1}:${PORT:-8000}/   admin: /admin/ (create a user: DEBUG=1 $PY manage.py createsuperuser)"
$PY -m uvicorn aistatus.asgi:application --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --no-access-log \
  --ws-per-message-deflate false &
wait -n
