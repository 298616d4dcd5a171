"""Switch prometheus_client to multiprocess mode for a prefork worker.

prometheus_client decides, when it is first imported, whether values live in memory or in
per-process files under ``PROMETHEUS_MULTIPROC_DIR``. The worker command therefore calls
:func:`enable_multiprocess_metrics` before it imports anything that imports prometheus_client
(``hera_router.workers`` does), and this module must itself import neither. The directory comes
from the settings (``HERA_OPS__METRICS_DIR``); exporting it is the one place the package writes
the environment, so that the prefork children inherit it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
from pathlib import Path

from hera_router.config import Settings

ENV_VAR = "PROMETHEUS_MULTIPROC_DIR"


class MetricsSetupError(RuntimeError):
    """Multiprocess metrics were requested after prometheus_client had already started."""


def enable_multiprocess_metrics(settings: Settings) -> Path:
    """Prepare an empty metrics directory for this worker, export it, and return it.

    ``HERA_OPS__METRICS_DIR`` is wiped first: files left by a previous run of the same worker
    would otherwise be added to the new counts. Without it, a fresh directory under
    ``data_dir/metrics`` is used and removed when the worker exits.
    """
    if "prometheus_client" in sys.modules:
        raise MetricsSetupError(
            "prometheus_client was imported before the metrics directory was set, so a prefork "
            "worker's children would count in memory that no scrape sees; call "
            "enable_multiprocess_metrics() first thing in the process"
        )
    configured = settings.ops.metrics_dir
    directory = configured if configured is not None else settings.data_dir / "metrics" / f"worker-{os.getpid()}"
    directory = directory.resolve()
    if directory.exists():
        for stale in directory.glob("*.db"):
            stale.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    if configured is None:
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[ENV_VAR] = str(directory)
    return directory
