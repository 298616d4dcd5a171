import os, time
from celery import Celery
PORT = int(os.environ.get("REPRO_PORT", "6391"))
app = Celery("repro", broker=f"redis://127.0.0.1:{PORT}/0")
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_cancel_long_running_tasks_on_connection_loss=os.environ.get("REPRO_CANCEL", "1") == "1",
    broker_connection_retry_on_startup=True,
    broker_transport_options={"visibility_timeout": 3600},
    task_ignore_result=True,
    worker_send_task_events=os.environ.get("REPRO_EVENTS", "1") == "1",
    worker_hijack_root_logger=True,
)
if os.environ.get("REPRO_DIAG") == "1":
    import reprodiag  # noqa
if os.environ.get("REPRO_FIX") == "1":
    import reprofix  # noqa
@app.task(name="slow")
def slow(i, secs=3.0):
    time.sleep(secs)
    return i
