"""Start the worker the way hera_router.cli does (app.worker_main), or with the exit status kept."""
import os, sys
from celery import signals
import reproapp
argv = ["worker", "-P", os.environ.get("POOL", "threads"), "-c", os.environ.get("CONC", "2"), "-l", "info", "-E", "-n", "repro@%h"]
if os.environ.get("EXITFIX") == "1":
    workers = []
    signals.worker_init.connect(lambda sender=None, **_: workers.append(sender), weak=False)
    reproapp.app.worker_main(argv)   # returns None whatever the worker's exitcode (click standalone_mode=False)
    code = workers[-1].exitcode if workers else 1
    sys.exit(code if isinstance(code, int) else (0 if code is None else 1))
reproapp.app.worker_main(argv)
