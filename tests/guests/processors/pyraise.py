"""pyraise: a Python processor whose process raises KeyError for every event
(its traceback goes to stderr; componentize-py then traps)."""
import wit_world


class WitWorld(wit_world.WitWorld):
    def init(self, args):
        pass

    def process(self, event):
        return {}[event]
