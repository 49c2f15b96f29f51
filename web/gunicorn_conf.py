"""gunicorn settings used by ``huodong web`` and the demo."""

from prometheus_client import multiprocess


def child_exit(server, worker):  # noqa: ANN001  (gunicorn's hook signature)
    multiprocess.mark_process_dead(worker.pid)
