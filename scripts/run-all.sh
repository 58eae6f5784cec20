#!/usr/bin/env bash
# Runs every process of the product on this machine (simulator, Celery worker and beat, web, one remote
# agent in the region "local") and stops them all together on Ctrl-C or when any of them exits.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM

$PY manage.py simulator &
.venv/bin/celery -A aistatus worker -Q celery,probes.default --pool threads --concurrency 8 --loglevel WARNING &
.venv/bin/celery -A aistatus beat --loglevel WARNING &
# One remote agent beside the worker: the demo shows two regions (the worker's "default" and "local").
AGENT_TOKEN=$($PY manage.py create_agent demo-local-agent --region local --replace | tail -n 1)
AGENT_SERVER="http://127.0.0.1:${PORT:-8000}" AGENT_TOKEN="$AGENT_TOKEN" LOG_LEVEL=WARNING $PY -m collectors.agent &
echo "Status page: http://${HOST:-127.0.0.1}:${PORT:-8000}/   admin: /admin/ (create a user: DEBUG=1 $PY manage.py createsuperuser)"
$PY -m uvicorn aistatus.asgi:application --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --no-access-log \
  --ws-per-message-deflate false &
wait -n
