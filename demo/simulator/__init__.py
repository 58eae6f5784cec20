"""A fast fake AI provider speaking the OpenAI and Anthropic wire formats, driven by a scenario, for demos and tests."""

from .app import DEMO_SCENARIO_PATH, SimulatorApp, build_app
from .scenario import ModelSpec, Scenario, ScenarioError, load_scenario
from .server import RunningSimulator, serve, serve_in_background

__all__ = [
    "DEMO_SCENARIO_PATH",
    "ModelSpec",
    "RunningSimulator",
    "Scenario",
    "ScenarioError",
    "SimulatorApp",
    "build_app",
    "load_scenario",
    "serve",
    "serve_in_background",
]
