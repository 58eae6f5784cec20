"""The simulator's ASGI application: routing, the per-model request flow, the control endpoints and the stats."""

from __future__ import annotations

import collections
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from . import anthropic_api, openai_api
from .behaviour import Behaviour
from .exchange import BadRequest, Exchange, Receive, Send, Waiters
from .scenario import ModelSpec, Scenario, ScenarioError, load_scenario

logger = logging.getLogger(__name__)

DEMO_SCENARIO_PATH = Path(__file__).with_name("demo.yaml")
# A changed scenario file is noticed on the next request at most this often.
RELOAD_CHECK_INTERVAL_S = 1.0

_FAILURE_MESSAGES = {
    "outage": "The model is unavailable (simulated outage).",
    "flap_down": "The model is unavailable (simulated flapping, currently down).",
    "error": "The server had an error while processing your request (simulated).",
    "rate_limited": "Rate limit reached for requests (simulated).",
    "overloaded": "Overloaded (simulated).",
}


class Endpoint(Protocol):
    """What a model endpoint of either wire format provides to the shared request flow."""

    def error_body(self, status: int, message: str, code: str | None = None) -> bytes: ...

    def parse(self, body: dict[str, Any], spec: ModelSpec) -> Any: ...

    async def answer(self, ex: Exchange, behaviour: Behaviour, model: str, request: Any, broken: bool) -> None: ...


_ENDPOINTS: dict[str, Endpoint] = {
    "/v1/chat/completions": openai_api.CHAT_COMPLETIONS,
    "/v1/embeddings": openai_api.EMBEDDINGS,
    "/v1/messages": anthropic_api.MESSAGES,
}
_CONTROL_MODEL_PREFIX = "/_control/models/"
_MODEL_PREFIX = "/v1/models/"
# Requests remembered per model for /_control/requests: a day of probes every 10 s.
REQUEST_LOG_LENGTH = 8640


def _header(scope: Mapping[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def _api_key(scope: Mapping[str, Any]) -> str | None:
    for key, value in scope["headers"]:
        if key == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        elif key == b"x-api-key":
            return value.decode("latin-1")
    return None


def _query_float(scope: Mapping[str, Any], name: bytes) -> float:
    for pair in scope.get("query_string", b"").split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == name:
            try:
                return float(value)
            except ValueError:
                raise BadRequest(f"{name.decode()}: must be a number") from None
    return 0.0


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


class SimulatorApp:
    """An ASGI app serving fake models. Replace its scenario in-process with `set_scenario` or `patch_model`."""

    def __init__(self, scenario: Scenario, *, clock: Callable[[], float] | None = None) -> None:
        # `clock` gives epoch seconds; tests swap it to move through outage windows and flap cycles instantly.
        self.clock: Callable[[], float] = clock or time.time
        self._waiters = Waiters()
        self._counts: dict[str, dict[str, int]] = {}
        # Every judged request as (epoch seconds, outcome), per model: the ground truth a chaos run
        # matches stored results against (`GET /_control/requests?since=<epoch>`). Bounded per model.
        self._requests: dict[str, collections.deque[tuple[float, str]]] = {}
        self._unknown_models = 0
        self._source: Path | None = None
        self._source_mtime: int | None = None
        self._next_check = 0.0
        self._install(scenario)

    # -- scenario -------------------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, value: Scenario | Mapping[str, Any] | str | os.PathLike[str]) -> None:
        self.set_scenario(value)

    def set_scenario(self, scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str]) -> Scenario:
        """Replace the whole scenario; raises ScenarioError and keeps the current one if the new one is invalid."""
        loaded = load_scenario(scenario, now=self.clock())
        self._install(loaded)
        return loaded

    def patch_model(self, name: str, settings: Mapping[str, Any]) -> ModelSpec:
        """Merge `settings` into one model (created if absent); raises ScenarioError and changes nothing if invalid."""
        scenario = self._scenario.with_model(name, settings, now=self.clock())
        behaviours = dict(self._behaviours)
        behaviours[name] = Behaviour(scenario.models[name], scenario.seed)
        self._scenario, self._behaviours = scenario, behaviours
        return scenario.models[name]

    def _install(self, scenario: Scenario) -> None:
        behaviours = {name: Behaviour(spec, scenario.seed) for name, spec in scenario.models.items()}
        self._scenario, self._behaviours = scenario, behaviours
        # Only a scenario that came from a file is watched; one set through the API stays until replaced.
        self._source = scenario.source
        self._source_mtime = self._mtime(scenario.source) if scenario.source else None

    @staticmethod
    def _mtime(path: Path) -> int | None:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return None

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + RELOAD_CHECK_INTERVAL_S
        source = self._source
        mtime = self._mtime(source)
        if mtime is None or mtime == self._source_mtime:
            return
        self._source_mtime = mtime
        try:
            scenario = load_scenario(source, now=self.clock())
        except ScenarioError as exc:
            logger.warning("Scenario file %s changed but is invalid, keeping the previous scenario: %s", source, exc)
            return
        self._install(scenario)
        logger.info("Reloaded scenario %s (%d models)", source, len(scenario.models))

    # -- stats ----------------------------------------------------------------------------------

    def _count(self, model: str, outcome: str) -> None:
        counts = self._counts.get(model)
        if counts is None:
            counts = self._counts[model] = {}
        counts[outcome] = counts.get(outcome, 0) + 1
        log = self._requests.get(model)
        if log is None:
            log = self._requests[model] = collections.deque(maxlen=REQUEST_LOG_LENGTH)
        log.append((self.clock(), outcome))

    def requests(self, since: float = 0.0) -> dict[str, list[tuple[float, str]]]:
        """Per model, each request judged at or after `since` (epoch seconds) as (time, outcome), oldest first."""
        return {
            model: [entry for entry in list(log) if entry[0] >= since] for model, log in list(self._requests.items())
        }

    def stats(self) -> dict[str, Any]:
        """Requests per model and per outcome (ok, error, rate_limited, overloaded, hang, broken_stream, ...)."""
        models: dict[str, dict[str, int]] = {}
        outcomes: dict[str, int] = {}
        for model, counts in list(self._counts.items()):
            counts = dict(counts)
            for outcome, number in counts.items():
                outcomes[outcome] = outcomes.get(outcome, 0) + number
            models[model] = {"total": sum(counts.values()), **counts}
        if self._unknown_models:
            outcomes["unknown_model"] = self._unknown_models
        return {"total": sum(outcomes.values()), "outcomes": outcomes, "models": models}

    def reset_stats(self) -> None:
        self._counts = {}
        self._requests = {}
        self._unknown_models = 0

    def release_waiting(self) -> None:
        """End hung and paused requests so a server can stop promptly. Safe to call from any thread."""
        self._waiters.release()

    # -- ASGI -----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            return
        if self._source is not None:
            self._reload_if_changed()
        path = scope["path"]
        endpoint = _ENDPOINTS.get(path)
        ex = Exchange(send, receive, self._waiters)
        try:
            if endpoint is not None:
                if scope["method"] != "POST":
                    await ex.json(405, endpoint.error_body(405, f"{scope['method']} is not allowed on {path}"))
                else:
                    await self._model_request(endpoint, scope, ex)
                    if not ex.started and not ex.client_gone:
                        await ex.json(503, endpoint.error_body(503, "The simulator is shutting down."))
            elif path == "/health":
                await ex.json(200, b'{"status":"ok"}')
            elif path == "/v1/models" or path.startswith(_MODEL_PREFIX):
                await self._models(scope, ex)
            elif path.startswith("/_control/"):
                await self._control(scope, ex)
            else:
                await ex.json(404, openai_api.error_body(404, f"Unknown path {path}"))
        finally:
            ex.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.release_waiting()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _model_request(self, endpoint: Endpoint, scope: dict[str, Any], ex: Exchange) -> None:
        try:
            body = await ex.read_json()
            model = body.get("model")
            if not isinstance(model, str) or not model:
                raise BadRequest("model: must be a non-empty string")
        except BadRequest as exc:
            await ex.json(400, endpoint.error_body(400, str(exc)))
            return
        behaviour = self._behaviours.get(model)
        if behaviour is not None:
            behaviour = behaviour.for_region(_header(scope, b"x-probe-region"))
        if behaviour is None:
            self._unknown_models += 1
            message = f"The model `{model}` does not exist or you do not have access to it."
            await ex.json(404, endpoint.error_body(404, message, "model_not_found"))
            return
        if behaviour.spec.require_api_key is not None and not behaviour.accepts_key(_api_key(scope)):
            self._count(model, "unauthorized")
            await ex.json(401, endpoint.error_body(401, "Incorrect API key provided.", "invalid_api_key"))
            return
        try:
            request = endpoint.parse(body, behaviour.spec)
        except BadRequest as exc:
            self._count(model, "bad_request")
            await ex.json(400, endpoint.error_body(400, str(exc)))
            return

        verdict = behaviour.judge(self.clock())
        self._count(model, verdict.outcome)
        action = verdict.action
        if action == "answer":
            await endpoint.answer(ex, behaviour, model, request, False)
        elif action == "fail":
            headers = ()
            if verdict.status == 429:
                headers = ((b"retry-after", b"%d" % round(behaviour.spec.retry_after_s)),)
            message = _FAILURE_MESSAGES.get(verdict.outcome, f"Simulated HTTP {verdict.status}.")
            await ex.json(verdict.status, endpoint.error_body(verdict.status, message), headers)
        elif action == "hang":
            # Say nothing until the client gives up; past the cap, answer like a gateway that gave up too.
            if await ex.pause(behaviour.spec.hang_max_s):
                await ex.json(504, endpoint.error_body(504, "Gateway timeout (simulated hang)."))
        else:
            await endpoint.answer(ex, behaviour, model, request, True)

    async def _models(self, scope: dict[str, Any], ex: Exchange) -> None:
        anthropic = _header(scope, b"anthropic-version") is not None
        created = int(self._scenario.loaded_at)
        path = scope["path"]
        if path == "/v1/models":
            names = list(self._scenario.models)
            body = anthropic_api.models_body(names) if anthropic else openai_api.models_body(names, created)
            await ex.json(200, body)
            return
        name = path[len(_MODEL_PREFIX) :]
        if name not in self._scenario.models:
            errors = anthropic_api if anthropic else openai_api
            await ex.json(404, errors.error_body(404, f"The model `{name}` does not exist.", "model_not_found"))
            return
        await ex.json(200, anthropic_api.model_body(name) if anthropic else openai_api.model_body(name, created))

    async def _control(self, scope: dict[str, Any], ex: Exchange) -> None:
        path, method = scope["path"], scope["method"]
        try:
            if path == "/_control/scenario" and method == "GET":
                await ex.json(200, _dumps(self._scenario.to_dict()))
            elif path == "/_control/scenario" and method == "PUT":
                scenario = self.set_scenario(await ex.read_json())
                await ex.json(200, _dumps(scenario.to_dict()))
            elif path.startswith(_CONTROL_MODEL_PREFIX) and method in ("GET", "PATCH"):
                name = path[len(_CONTROL_MODEL_PREFIX) :]
                if method == "PATCH":
                    spec = self.patch_model(name, await ex.read_json())
                elif (spec := self._scenario.models.get(name)) is None:
                    await ex.json(404, _dumps({"error": f"models.{name}: no such model"}))
                    return
                await ex.json(200, _dumps({"name": name, "settings": spec.settings}))
            elif path == "/_control/stats" and method == "GET":
                await ex.json(200, _dumps(self.stats()))
            elif path == "/_control/requests" and method == "GET":
                since = _query_float(scope, b"since")
                await ex.json(200, _dumps({"models": self.requests(since)}))
            elif path == "/_control/stats" and method == "DELETE":
                self.reset_stats()
                await ex.json(200, _dumps(self.stats()))
            else:
                await ex.json(404, _dumps({"error": f"no control endpoint {method} {path}"}))
        except (BadRequest, ScenarioError) as exc:
            await ex.json(400, _dumps({"error": str(exc)}))


def build_app(
    scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    *,
    clock: Callable[[], float] | None = None,
) -> SimulatorApp:
    """An ASGI app serving `scenario` (a Scenario, a dict or a file path; the demo scenario when None)."""
    now = (clock or time.time)()
    return SimulatorApp(load_scenario(DEMO_SCENARIO_PATH if scenario is None else scenario, now=now), clock=clock)
