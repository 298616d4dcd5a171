"""Prometheus metrics: the instruments (``instruments``), the scrape-time state collector
(``state``) and the multiprocess set-up of prefork workers (``multiprocess``).

This package's ``__init__`` imports nothing: ``multiprocess.enable_multiprocess_metrics`` must run
before anything imports prometheus_client.
"""
