"""`python -m collectors.agent`: run one agent until SIGTERM or Ctrl-C (then it sends or spools what it holds)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from .service import Agent, AgentConfig


async def main() -> None:
    agent = Agent(AgentConfig.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    await agent.run()


if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(main())
