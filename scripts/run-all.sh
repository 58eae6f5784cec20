#!/usr/bin/env bash
# Runs every process of the product on this machine (simulator, Celery worker and beat, web, one remote
# agent in the region "local") and stops them all together on Ctrl-C or when any of them exits. Refuses to
# start when a port is taken.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-8000}
SIMULATOR_PORT=${SIMULATOR_PORT:-8900}
export HOST PORT SIMULATOR_PORT

# Before anything starts: a taken port stops here, with its name and how to choose another.
HOST=$HOST PORT=$PORT SIMULATOR_PORT=$SIMULATOR_PORT $PY scripts/ports.py || exit 1

trap 'trap - EXIT INT TERM; kill 0 2>/dev/null || true' EXIT INT TERM

$PY manage.py simulator --port "$SIMULATOR_PORT" &
pids=($!)
"$(dirname "$PY")/celery" -A aistatus worker -Q celery,probes.default --pool threads --concurrency 8 --loglevel WARNING &
pids+=($!)
"$(dirname "$PY")/celery" -A aistatus beat --loglevel WARNING &
pids+=($!)
# One remote agent beside the worker: the demo shows two regions (the worker's "default" and "local").
AGENT_TOKEN=$($PY manage.py create_agent demo-local-agent --region local --replace | tail -n 1)
AGENT_SERVER="http://127.0.0.1:$PORT" AGENT_TOKEN="$AGENT_TOKEN" LOG_LEVEL=WARNING $PY -m collectors.agent &
pids+=($!)
$PY -m uvicorn aistatus.asgi:application --host "$HOST" --port "$PORT" --no-access-log \
  --ws-per-message-deflate false &
web=$!
pids+=($web)
# Announced once it accepts connections, not before.
( if $PY scripts/ports.py wait "$HOST" "$PORT" 120 && kill -0 "$web" 2>/dev/null; then
    echo "Status page listening on http://$HOST:$PORT/   admin: /admin/ (create a user: $PY manage.py createsuperuser)"
  fi ) &
# The stack stops when any of its processes does (the announcement above is not one of them).
wait -n "${pids[@]}"
