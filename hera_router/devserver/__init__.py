"""A loopback model server speaking the TGI and OpenAI protocols in front of any backend."""

from hera_router.devserver.app import create_app
from hera_router.devserver.faults import FaultConfig, FaultInjector, ScriptedFault
from hera_router.devserver.server import ServerThread

__all__ = ["FaultConfig", "FaultInjector", "ScriptedFault", "ServerThread", "create_app"]
