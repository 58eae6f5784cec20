"""Register a remote collector agent for a region and print its token (the last line of the output)."""

import re

from django.core.management.base import BaseCommand, CommandError

from collectors.models import Agent
from monitoring.acting import acting_as, command_operator

_REGION = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class Command(BaseCommand):
    help = "Create a remote agent; its token is printed once (only its hash is stored). Revoke it in the admin."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--region", required=True, help="The region its results are recorded under (e.g. eu).")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="If the agent exists, give it a new token (the old one stops working).",
        )

    def handle(self, *args, name: str, region: str, replace: bool, **options) -> None:
        if not _REGION.match(region):
            raise CommandError("--region: lower-case letters, digits and dashes, at most 32 characters.")
        existing = Agent.objects.filter(name=name).first()
        if existing is not None and not replace:
            raise CommandError(f"An agent named {name!r} exists; choose another name (or pass --replace).")
        # Recorded in the audit trail under the command's operator.
        with acting_as(name=command_operator()):
            if existing is not None:
                agent, token = existing, existing.reissue(region)
                self.stdout.write(f"Agent {agent.name} has a new token, for region {agent.region}. Run it with:")
            else:
                agent, token = Agent.issue(name, region)
                self.stdout.write(f"Agent {agent.name} created for region {agent.region}. Run it with:")
        self.stdout.write("  AGENT_SERVER=<site URL> AGENT_TOKEN=<token> python -m collectors.agent")
        self.stdout.write(token)
