"""A local Xprizo simulator for development and tests, with scripted outcomes."""

from simulator.app import SimTransaction, create_app
from simulator.scenarios import Scenario, ScenarioKind, scenario_from_description
from simulator.server import serve

__all__ = [
    "Scenario",
    "ScenarioKind",
    "SimTransaction",
    "create_app",
    "scenario_from_description",
    "serve",
]
