"""The remote collector agent: probes from its own region with the collectors' probe modules and pushes to the site.

It needs no database, no Redis, no Celery and no Django: `AGENT_SERVER=<site URL> AGENT_TOKEN=<token>
python -m collectors.agent` (requirements-agent.txt). Nothing here imports Django.
"""

VERSION = "1.0.0"
