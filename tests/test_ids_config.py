"""Task ids, TaskConfig validation and the ``tasktype=`` option."""

from __future__ import annotations

import base64
import re

import pytest
from ladon.compat import PORTABLE_STRING

from ladon_tasks import ConfigurationError, InvalidTaskId, TaskConfig, TaskOptions, TaskPolicy, ladonize
from ladon_tasks.ids import new_task_id, validate_task_id
from ladon_tasks.ladon_glue.spec import parse_tasktype

# -- task ids -------------------------------------------------------------------------------


def test_task_id_carries_128_bits_url_safe():
    task_id = new_task_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", task_id)
    assert len(base64.urlsafe_b64decode(task_id + "==")) == 16


def test_task_ids_are_unique_and_well_spread():
    ids = [new_task_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    # Every one of the 64 URL-safe characters shows up somewhere: the ids are random.
    assert len(set("".join(ids))) == 64


def test_issued_ids_pass_validation_unchanged():
    for _ in range(100):
        task_id = new_task_id()
        assert validate_task_id(task_id) == task_id


@pytest.mark.parametrize("value", [
    "",
    "short",
    "A" * 21,
    "A" * 23,
    "A" * 10_000,
    "A" * 21 + "=",
    "A" * 21 + "/",
    "A" * 21 + "+",
    "A" * 21 + " ",
    " " + "A" * 21,
    "A" * 21 + "\n",
    "A" * 20 + "é",
    "../../etc/passwd/xxxxxx",
    "ladon_tasks:task:*AAAAA",
])
def test_malformed_ids_are_rejected(value):
    with pytest.raises(InvalidTaskId):
        validate_task_id(value)


@pytest.mark.parametrize("value", [None, 12345, 1.5, ["A" * 22], {"id": "A" * 22}])
def test_non_strings_are_rejected(value):
    with pytest.raises(InvalidTaskId):
        validate_task_id(value)


def test_bytes_ids():
    task_id = new_task_id()
    assert validate_task_id(task_id.encode("ascii")) == task_id
    with pytest.raises(InvalidTaskId):
        validate_task_id(b"\xff" * 22)
    with pytest.raises(InvalidTaskId):
        validate_task_id(b"A" * 23)


def test_rejection_message_does_not_echo_huge_input():
    with pytest.raises(InvalidTaskId) as raised:
        validate_task_id("B" * 100_000)
    assert len(str(raised.value)) < 200


# -- TaskConfig -----------------------------------------------------------------------------


def test_defaults_are_thread_mode_without_redis():
    config = TaskConfig()
    assert config.mode == "thread"
    assert config.redis_url is None
    assert config.processes >= 1 and config.threads >= 1


def test_process_mode_without_redis_url_names_the_fix():
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig(mode="process")
    message = str(raised.value)
    assert "redis_url" in message
    assert "redis://" in message
    assert "LADON_TASKS_REDIS_URL" in message


def test_process_mode_with_redis_url():
    config = TaskConfig(mode="process", redis_url="redis://localhost:6379/2")
    assert config.mode == "process"
    assert config.redis_url == "redis://localhost:6379/2"


def test_configuration_error_is_a_value_error():
    with pytest.raises(ValueError):
        TaskConfig(mode="fork")


@pytest.mark.parametrize("options, field", [
    ({"mode": "fork"}, "mode"),
    ({"threads": 0}, "threads"),
    ({"processes": -1}, "processes"),
    ({"result_ttl": 0}, "result_ttl"),
    ({"progress_interval": -0.5}, "progress_interval"),
    ({"heartbeat_interval": 0}, "heartbeat_interval"),
    ({"lost_after": -1}, "lost_after"),
    ({"heartbeat_interval": 5.0, "lost_after": 5.0}, "lost_after"),
    ({"redis_url": "http://localhost:6379/0"}, "redis_url"),
    ({"redis_url": "localhost:6379"}, "redis_url"),
])
def test_bad_values_name_the_field(options, field):
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig(**options)
    assert field in str(raised.value)


@pytest.mark.parametrize("url", ["redis://h:6379/0", "rediss://user:pw@h:6380/1", "unix:///tmp/redis.sock"])
def test_redis_url_schemes_accepted(url):
    assert TaskConfig(redis_url=url).redis_url == url


@pytest.mark.parametrize("options, field", [
    ({"threads": "many"}, "threads"),
    ({"result_ttl": "soon"}, "result_ttl"),
    ({"debug": "maybe"}, "debug"),
    ({"processes": "0"}, "processes"),
])
def test_with_options_rejects_bad_numbers_and_bools(options, field):
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig().with_options(**options)
    assert field in str(raised.value)


def test_with_options_coerces_strings():
    config = TaskConfig().with_options(threads="3", result_ttl="2.5", debug="yes")
    assert config.threads == 3 and config.result_ttl == 2.5 and config.debug is True


def test_unknown_option_is_rejected_naming_it():
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig().with_options(thread=4)
    assert "thread" in str(raised.value)
    assert "threads" in str(raised.value)  # the known names are listed


def test_unknown_option_through_the_application():
    from conftest import make_app

    with pytest.raises(ConfigurationError) as raised:
        make_app(["calc_service"], redis_host="localhost")
    assert "redis_host" in str(raised.value)


def test_config_is_frozen():
    config = TaskConfig()
    with pytest.raises(AttributeError):
        config.threads = 3  # type: ignore[misc]


def test_from_env_reads_every_kind_of_field():
    environ = {
        "LADON_TASKS_MODE": "process",
        "LADON_TASKS_REDIS_URL": "redis://r:6379/3",
        "LADON_TASKS_THREADS": "5",
        "LADON_TASKS_PROCESSES": "3",
        "LADON_TASKS_KEY_PREFIX": "myapp",
        "LADON_TASKS_RESULT_TTL": "60",
        "LADON_TASKS_PROGRESS_INTERVAL": "0.25",
        "LADON_TASKS_HEARTBEAT_INTERVAL": "2",
        "LADON_TASKS_LOST_AFTER": "30",
        "LADON_TASKS_GRACE_PERIOD": "4.5",
        "LADON_TASKS_DEBUG": "true",
        "UNRELATED": "x",
    }
    config = TaskConfig.from_env(environ)
    assert config == TaskConfig(
        mode="process", redis_url="redis://r:6379/3", threads=5, processes=3, key_prefix="myapp",
        result_ttl=60.0, progress_interval=0.25, heartbeat_interval=2.0, lost_after=30.0,
        grace_period=4.5, debug=True)
    assert isinstance(config.threads, int) and isinstance(config.result_ttl, float)


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), ("on", True), (" On ", True),
    ("0", False), ("false", False), ("False", False), ("no", False), ("off", False),
])
def test_from_env_bools(raw, expected):
    assert TaskConfig.from_env({"LADON_TASKS_DEBUG": raw}).debug is expected


def test_from_env_rejects_a_bad_bool():
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig.from_env({"LADON_TASKS_DEBUG": "sometimes"})
    assert "debug" in str(raised.value)


def test_from_env_rejects_a_bad_number():
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig.from_env({"LADON_TASKS_THREADS": "eight"})
    assert "threads" in str(raised.value)


def test_from_env_empty_values_are_ignored():
    assert TaskConfig.from_env({"LADON_TASKS_THREADS": "", "LADON_TASKS_MODE": ""}) == TaskConfig()


def test_from_env_process_mode_without_url_fails():
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig.from_env({"LADON_TASKS_MODE": "process"})
    assert "redis_url" in str(raised.value)


def test_from_env_overrides_win_and_none_overrides_do_not():
    environ = {"LADON_TASKS_THREADS": "5", "LADON_TASKS_MODE": "thread"}
    config = TaskConfig.from_env(environ, threads=2, mode=None)
    assert config.threads == 2 and config.mode == "thread"


def test_from_env_reads_os_environ(monkeypatch):
    monkeypatch.setenv("LADON_TASKS_THREADS", "7")
    monkeypatch.setenv("LADON_TASKS_DEBUG", "on")
    config = TaskConfig.from_env()
    assert config.threads == 7 and config.debug is True


# -- tasktype= ------------------------------------------------------------------------------


@pytest.mark.parametrize("tasktype, expected", [
    (False, (False, None, None)),
    (None, (False, None, None)),
    (True, (True, None, None)),
    ("thread", (True, "thread", None)),
    ("process", (True, "process", None)),
    ({}, (True, None, None)),
    ({"enable": True}, (True, None, None)),
    ({"enable": False}, (False, None, None)),
    ({"mode": "thread"}, (True, "thread", None)),
    ({"mode": "process", "redis_url": "redis://r:6380/2"}, (True, "process", "redis://r:6380/2")),
    ({"redis_url": "redis://r:6380/2"}, (True, "process", "redis://r:6380/2")),
    ({"enable": True, "redis_server": "cache.example"},
     (True, "process", "redis://cache.example:6379/0")),
    ({"redis_server": "redis://other:7000/4"}, (True, "process", "redis://other:7000/4")),
])
def test_parse_tasktype(tasktype, expected):
    options = parse_tasktype(tasktype)
    got = (False, None, None) if options is None else (True, options.mode, options.redis_url)
    assert got == expected


def test_ladon_107_redis_server_form_means_process_mode_on_the_default_port():
    options = parse_tasktype({"enable": True, "redis_server": "host"})
    assert (options.mode, options.redis_url) == ("process", "redis://host:6379/0")


def test_lifecycle_options_are_read_into_one_typed_object():
    options = parse_tasktype({"mode": "thread", "time_limit": 30, "max_silence": 5.5, "retries": 2,
                              "retry_backoff": 0.5, "cancel_grace": 1})
    assert options == TaskOptions(mode="thread", time_limit=30, max_silence=5.5, retries=2,
                                  retry_backoff=0.5, cancel_grace=1)


def test_a_methods_options_are_laid_over_the_applications():
    config = TaskConfig(time_limit=60, retries=1, retry_backoff=2.0, cancel_grace=3.0)
    policy = TaskOptions(max_silence=10, retries=4).policy(config)
    assert policy == TaskPolicy(time_limit=60, max_silence=10, cancel_grace=3.0, retries=4,
                                retry_backoff=2.0)
    assert policy.max_attempts == 5
    assert [policy.retry_delay(attempt) for attempt in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert TaskOptions().policy(TaskConfig()) == TaskPolicy(time_limit=None, max_silence=None,
                                                          cancel_grace=5.0, retries=0, retry_backoff=1.0)


@pytest.mark.parametrize("tasktype, word", [
    ({"time_limit": 0}, "time_limit"),
    ({"time_limit": -1}, "time_limit"),
    ({"max_silence": "soon"}, "max_silence"),
    ({"retries": -1}, "retries"),
    ({"retries": 1.5}, "retries"),
    ({"retries": True}, "retries"),
    ({"retry_backoff": -2}, "retry_backoff"),
    ({"cancel_grace": 0}, "cancel_grace"),
])
def test_bad_lifecycle_options_fail_when_the_decorator_is_applied(tasktype, word):
    with pytest.raises(ConfigurationError) as raised:
        ladonize(int, rtype=int, tasktype=tasktype)
    assert word in str(raised.value)
    assert "give" in str(raised.value)  # the fix is named


@pytest.mark.parametrize("options, word", [
    ({"time_limit": "-5"}, "time_limit"),
    ({"max_silence": "0"}, "max_silence"),
    ({"retries": "-1"}, "retries"),
    ({"retries": "two"}, "retries"),
    ({"retry_backoff": "-1"}, "retry_backoff"),
    ({"cancel_grace": "0"}, "cancel_grace"),
    ({"tombstone_ttl": "0"}, "tombstone_ttl"),
])
def test_bad_lifecycle_options_fail_at_start_up(options, word):
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig().with_options(**options)
    assert word in str(raised.value)


def test_lifecycle_options_from_the_environment():
    config = TaskConfig.from_env({"LADON_TASKS_TIME_LIMIT": "90", "LADON_TASKS_MAX_SILENCE": "none",
                                  "LADON_TASKS_RETRIES": "3", "LADON_TASKS_RETRY_BACKOFF": "0.25",
                                  "LADON_TASKS_CANCEL_GRACE": "2", "LADON_TASKS_TOMBSTONE_TTL": "60"})
    assert (config.time_limit, config.max_silence, config.retries, config.retry_backoff,
            config.cancel_grace, config.tombstone_ttl) == (90.0, None, 3, 0.25, 2.0, 60.0)
    defaults = TaskConfig()
    assert (defaults.time_limit, defaults.max_silence, defaults.retries) == (None, None, 0)


def test_memcache_server_is_rejected_pointing_to_redis():
    with pytest.raises(ConfigurationError) as raised:
        parse_tasktype({"enable": True, "memcache_server": "host"})
    assert "memcache_server" in str(raised.value)
    assert "redis_url" in str(raised.value)


@pytest.mark.parametrize("tasktype, word", [
    ({"enable": True, "redis_host": "h"}, "redis_host"),
    ({"mode": "fork"}, "fork"),
    ({"redis_url": "http://h/"}, "redis_url"),
    ("processes", "processes"),
    (1, "1"),
    (["process"], "process"),
])
def test_bad_tasktypes_are_rejected(tasktype, word):
    with pytest.raises(ConfigurationError) as raised:
        parse_tasktype(tasktype)
    assert word in str(raised.value)


def test_bad_tasktype_raises_when_the_decorator_is_applied():
    with pytest.raises(ConfigurationError):
        class Broken:
            @ladonize(PORTABLE_STRING, rtype=int, tasktype={"enable": True, "memcache_server": "m"})
            def work(self, value, **kw):
                return 1


def test_unknown_tasktype_key_raises_before_any_class_exists():
    decorator_made = []
    with pytest.raises(ConfigurationError):
        decorator_made.append(ladonize(int, rtype=int, tasktype={"redis_sever": "typo"}))
    assert decorator_made == []


def test_celery_mode_needs_redis_and_names_the_fix():
    with pytest.raises(ConfigurationError) as raised:
        TaskConfig(mode="celery")
    assert "mode='celery'" in str(raised.value) and "redis_url" in str(raised.value)
    config = TaskConfig(mode="celery", redis_url="redis://localhost:6379/0")
    assert (config.broker_url, config.celery_queue) == (None, "ladon_tasks")


@pytest.mark.parametrize("options, word", [
    ({"broker_url": "localhost:5672"}, "broker_url"),
    ({"celery_queue": " "}, "celery_queue"),
])
def test_bad_celery_options_name_the_field(options, word):
    with pytest.raises(ConfigurationError, match=word):
        TaskConfig(mode="celery", redis_url="redis://localhost:6379/0", **options)


def test_celery_options_from_the_environment():
    config = TaskConfig.from_env({"LADON_TASKS_MODE": "celery", "LADON_TASKS_REDIS_URL": "redis://r:6379/0",
                                  "LADON_TASKS_BROKER_URL": "amqp://guest@mq//",
                                  "LADON_TASKS_CELERY_QUEUE": "reports"})
    assert (config.mode, config.broker_url, config.celery_queue) == ("celery", "amqp://guest@mq//", "reports")
    assert parse_tasktype({"mode": "celery"}).mode == "celery"
