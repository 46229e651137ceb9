"""The units nameko service: thin - everything it does is declared in application.py."""
from services.units.application import app
from shared.service import NodeService


class UnitsService(NodeService):
    name = "units"
    app = app
