"""The units nameko service: thin - everything it does is declared in application.py,
plus the feed the other services' unit mirrors catch up from."""
from nameko.rpc import rpc

from services.units.application import app
from shared.service import NodeService
from shared.unittree import UNIT_EVENT_TYPES


class UnitsService(NodeService):
    name = "units"
    app = app

    @rpc
    def unit_events(self, after=0, limit=500):
        """``Unit.*`` events after a log position, oldest first, each as the relay
        publishes it: what another service's unit mirror catches up from after a start-up
        race (shared.service.catch_up_units). No token: these are exactly the messages
        every service of the node already reads on ``units.events`` (names, kinds, levels,
        parents, flags - no people), and only the node's own services reach its RPC."""
        after, limit = max(0, int(after)), max(1, min(int(limit), 1000))
        with self.store.read() as conn:
            page = self.store.runtime.store.read_all(conn, after=after, limit=limit,
                                                     event_types=UNIT_EVENT_TYPES)
        return [e.to_message() for e in page]
