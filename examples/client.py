"""Start the example tasks over JSON-WSP and over SOAP, with a progress bar, print results,
and cancel a third task half-way.

Serve the example services, then run this script against them::

    ladon-tasks serve task_service instance_service --path examples --port 8080
    python examples/client.py http://127.0.0.1:8080

Needs the ``client`` extra (``pip install 'ladon_tasks[client]'``): rich draws the bar,
zeep speaks SOAP.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from ladon_tasks.client import ClientError, TaskClient, TaskProgress, plain_value


def follow(client: TaskClient, method: str, task_id: str, console: Console) -> Any:
    """Wait for a task with ``client.join``, drawing its progress as a bar."""
    columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
               TextColumn("{task.fields[state]}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        row = bar.add_task(f"{method} over {client.protocol}", total=1.0, state="queued")

        def show(progress: TaskProgress) -> None:
            bar.update(row, completed=progress.progress, state=progress.state)

        return client.join(method, task_id, progress_callback=show)


def clone_instance(base_url: str, console: Console) -> Any:
    """InstanceService.cloneInstance over JSON-WSP: its LadonType result arrives as a dict."""
    client = TaskClient(f"{base_url}/InstanceService", protocol="jsonwsp")
    task_id = client.start("cloneInstance", "vm-42", new_instance_name="vm-42-copy")
    console.print(f"started cloneInstance: task {task_id}")
    return follow(client, "cloneInstance", task_id, console)


def count_to(base_url: str, console: Console) -> Any:
    """TaskService.taskExample over SOAP (zeep); it counts for two seconds."""
    client = TaskClient(f"{base_url}/TaskService", protocol="soap")
    task_id = client.start("taskExample", "demo-session", 7)
    console.print(f"started taskExample: task {task_id}")
    return follow(client, "taskExample", task_id, console)


def cancel_half_way(base_url: str, console: Console) -> TaskProgress:
    """Start TaskService.taskExample, cancel it once it is half done, and wait for its end."""
    client = TaskClient(f"{base_url}/TaskService")
    task_id = client.start("taskExample", "demo-session", 9)
    console.print(f"started taskExample: task {task_id}, to be cancelled half-way")
    while client.progress("taskExample", task_id).progress < 0.5:
        time.sleep(0.05)
    asked = client.cancel("taskExample", task_id)
    console.print(f"cancel asked at {asked.progress:.0%} ({asked.state})")
    progress = client.wait("taskExample", task_id, timeout=60)
    console.print(f"taskExample ended {progress.state}: {progress.error}", markup=False)
    return progress


def run(base_url: str, console: Console | None = None) -> dict:
    """Run the tasks against the services at ``base_url``; return the results of the two that
    run to their end."""
    console = console or Console()
    results = {
        "cloneInstance": plain_value(clone_instance(base_url, console)),
        "taskExample": plain_value(count_to(base_url, console)),
    }
    for method, result in results.items():
        console.print(f"{method} returned:")
        console.print_json(json.dumps(result))
    cancel_half_way(base_url, console)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:8080",
                        help="where the services are served (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        run(args.base_url.rstrip("/"))
    except ClientError as error:
        print(f"client.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
