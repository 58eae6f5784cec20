"""Serve the AI-provider simulator (OpenAI and Anthropic wire formats) for the demo and local testing."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo.simulator import DEMO_SCENARIO_PATH, ScenarioError, build_app, serve
from demo.simulator.server import bind


class Command(BaseCommand):
    help = "Serve fake AI models speaking the OpenAI and Anthropic APIs, behaving as a scenario file says."
    # The simulator needs neither the database nor the project's checks; it must start even when they fail.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Interface to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8900, help="Port to listen on (default 8900).")
        parser.add_argument(
            "--scenario",
            default=str(DEMO_SCENARIO_PATH),
            help="Scenario file, YAML or JSON; reloaded when it changes (default: the demo scenario).",
        )

    def handle(self, *args, host: str, port: int, scenario: str, **options) -> None:
        try:
            app = build_app(scenario)
        except ScenarioError as exc:
            message = str(exc)
            # File-level errors already start with the path; field errors need it to say which file.
            if not message.startswith(str(Path(scenario).resolve())):
                message = f"{scenario}: {message}"
            raise CommandError(f"Invalid scenario: {message}") from None
        count = len(app.scenario.models)
        # Bound before saying so: "listening" is printed only once it is true.
        try:
            sock = bind(host, port)
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {host}:{port}: {exc.strerror or exc}. Choose another port with --port "
                f"(make run: SIMULATOR_PORT=<port>)."
            ) from None
        self.stdout.write(
            f"Simulator listening on http://{host}:{port}/v1 with scenario {app.scenario.source} "
            f"({count} model{'s' if count != 1 else ''}); control at http://{host}:{port}/_control/scenario"
        )
        self.stdout.flush()
        try:
            serve(app, sock=sock)
        except KeyboardInterrupt:
            # uvicorn shuts down gracefully and then re-raises Ctrl-C; that is the normal way to stop.
            pass
