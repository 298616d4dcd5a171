"""Proposed workaround for kombu 5.7.0's redis Channel close after Connection.collect()."""
from kombu.transport import redis as kredis
from redis.exceptions import ConnectionError as RedisConnectionError


def install() -> None:
    if getattr(kredis.Channel, "_hera_close_patch", False):
        return
    orig_connparams = kredis.Channel._connparams
    orig_close = kredis.Channel.close

    def _connparams(self, asynchronous=False):
        transport = self.connection
        if transport is None or transport.client is None:
            # The kombu Connection was collected/closed: do not rebuild a pool from nothing.
            raise RedisConnectionError("kombu redis channel used after its connection was closed")
        return orig_connparams(self, asynchronous=asynchronous)

    def close(self):
        if self._in_poll:
            try:
                self._brpop_read()          # resets _in_poll in its finally
            except Exception:               # Empty, or the connection error that broke the socket
                pass
        return orig_close(self)

    import os
    part = os.environ.get("REPRO_FIX_PART", "both")
    if part in ("both", "connparams"):
        kredis.Channel._connparams = _connparams
    if part in ("both", "close"):
        kredis.Channel.close = close
    kredis.Channel._hera_close_patch = True


install()
