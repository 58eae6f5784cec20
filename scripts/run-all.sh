#!/usr/bin/env bash
# Runs every process of the product on this machine and stops them all together (Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM

echo "Status page: http://${HOST:-127.0.0.1}:${PORT:-8000}/   admin: /admin/ (python manage.py createsuperuser)"
$PY -m uvicorn monitoring.asgi:application --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --no-access-log &
wait -n
