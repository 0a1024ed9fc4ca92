"""The whole round trip in one process: serve the example services, run the client, stop.

    scripts/demo                # makes .venv, installs ladon_tasks[client], runs this
    python examples/demo.py     # in an environment that has ladon_tasks[client]

The services run in thread mode on werkzeug's server, on a free port, in a background
thread; ``examples/client.py`` clones an instance over JSON-WSP and counts over SOAP.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from werkzeug.serving import make_server

from ladon_tasks import TaskWSGIApplication
from ladon_tasks.client import ClientError

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import client as example_client  # noqa: E402  (examples/client.py)


def main() -> int:
    # werkzeug logs every request at INFO; the demo shows the client's side only.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    console = Console()
    app = TaskWSGIApplication(["task_service", "instance_service"], [str(HERE)], mode="thread")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="demo-server", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    console.print(f"serving TaskService and InstanceService on {base_url}")
    began = time.monotonic()
    try:
        example_client.run(base_url, console)
    except ClientError as error:
        console.print(f"demo failed: {error}", style="red", markup=False)
        return 1
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.close(grace_period=5)
    console.print(f"done in {time.monotonic() - began:.1f} s; server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
