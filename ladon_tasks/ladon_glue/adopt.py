"""Unchanged Ladon modules: their task methods become ladon_tasks task methods."""

from __future__ import annotations

import sys
from typing import Any

from ladon.ladonizer.collection import global_service_collection

from ladon_tasks.ladon_glue.endpoints import install_endpoints, register_endpoints
from ladon_tasks.ladon_glue.spec import TaskMethodSpec, parse_tasktype
from ladon_tasks.ladon_glue.types import TaskInfoResponse


def adopt_ladon_task_methods() -> int:
    """Take over every method Ladon's own ``ladonize(tasktype=...)`` registered.

    Returns how many were adopted. Each becomes a ladon_tasks task method, and Ladon's
    built-in tasktype, which would act on ``_task_rtype``, never sees it.
    """
    adopted = 0
    for sinfo in list(global_service_collection().services.values()):
        for lmi in list(sinfo.methods.values()):
            if getattr(lmi, "_task_rtype", None) is None or hasattr(lmi, "_ladon_tasks_spec"):
                continue
            legacy = {"redis_server": lmi._task_redis_server} if getattr(
                lmi, "_task_redis_server", None) else True
            options = parse_tasktype(legacy)
            assert options is not None
            spec = TaskMethodSpec(name=lmi._func_name, rtype=lmi._task_rtype, func=lmi._real_method,
                                  lmi=lmi, options=options)
            _take_over_method_info(lmi)
            cls = getattr(sys.modules[sinfo.modulename], sinfo.servicename)
            install_endpoints(cls, register_endpoints(spec))
            adopted += 1
    return adopted


def _take_over_method_info(lmi: Any) -> None:
    """Turn Ladon's task method info into ours: our TaskInfoResponse, no built-in markers."""
    from ladon.types.tasktype import TaskInfoResponse as LadonTaskInfoResponse

    del lmi._task_rtype
    for name in ("_task_redis_server", "_task_memcache_server"):
        if hasattr(lmi, name):
            delattr(lmi, name)
    lmi._tasktype = False
    lmi._rtype = TaskInfoResponse
    manager = lmi.sinfo.typemanager
    manager.analyze_param(TaskInfoResponse)
    still_used = any(getattr(m, "_rtype", None) is LadonTaskInfoResponse for m in lmi.sinfo.methods.values())
    if not still_used and LadonTaskInfoResponse in manager.type_dict:
        entry = manager.type_dict.pop(LadonTaskInfoResponse)
        manager.type_order = [t for t in manager.type_order if t is not entry]
