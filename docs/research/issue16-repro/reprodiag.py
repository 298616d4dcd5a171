import logging, traceback
from kombu.transport import redis as kr
log = logging.getLogger("diag")
_orig_close = kr.Channel.close
def close(self):
    log.warning("DIAG close ch=%s id=%s closed=%s in_poll=%s pool=%s conn=%s client=%s delivered=%d",
                type(self).__name__, self.channel_id, self.closed, bool(self._in_poll), self._pool is not None,
                self.connection is not None, getattr(self.connection, 'client', 'n/a') is not None,
                len(self.qos._delivered) if self._qos else -1)
    try:
        return _orig_close(self)
    except BaseException as exc:
        log.warning("DIAG close raised %r (closed now=%s)", exc, self.closed)
        raise
kr.Channel.close = close
