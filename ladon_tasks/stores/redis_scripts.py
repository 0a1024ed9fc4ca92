"""The Lua scripts of the Redis store: every write of a task's life is one atomic script.

Each script changes a task only if it exists and is in the expected state, so writes from
a late or restarted worker can neither resurrect nor reopen a task.
"""

from __future__ import annotations

from ladon_tasks.metrics import DURATION_BUCKETS, METRICS_TTL
from ladon_tasks.stores.redis_index import MAX_INDEXED

# KEYS[1] is the task's hash, KEYS[2] (where used) its tombstone: why it is gone, and
# '|' and the caller it was bound to, if any.
# The task index: two sorted sets of task ids scored by creation time, KEYS[3] of the tasks
# queued or running, KEYS[4] of those ended. A task moves from the first to the second as it
# ends (back if it is queued again) and leaves both when dismissed; an empty set is gone,
# and each set's TTL is kept at least that of any task hash it indexes. At most INDEX_CAP
# members each: the oldest go first. KEYS[5], where given, is the metrics hash: a counter
# per ``event|method`` (see ladon_tasks.metrics), ``bucket<i>|method`` and ``sum|method``.
_INDEX_STEP = f"""
local INDEX_CAP = {MAX_INDEXED}
local BUCKETS = {{{", ".join(repr(bound) for bound in DURATION_BUCKETS)}}}
local METRICS_TTL = {METRICS_TTL}
local function count(metrics, event, method)
  redis.call('HINCRBY', metrics, event .. '|' .. method, 1)
  redis.call('EXPIRE', metrics, METRICS_TTL)
end
local function ran(metrics, method, seconds)
  local bucket = #BUCKETS
  for i, bound in ipairs(BUCKETS) do
    if seconds <= bound then bucket = i - 1; break end
  end
  redis.call('HINCRBY', metrics, 'bucket' .. bucket .. '|' .. method, 1)
  redis.call('HINCRBYFLOAT', metrics, 'sum|' .. method, seconds)
end
local function extend(key, ttl)
  if redis.call('TTL', key) < tonumber(ttl) then redis.call('EXPIRE', key, ttl) end
end
-- Index the task of KEYS[1] (its id: task_id) in the set ``to``, by its creation time,
-- taking it out of ``from`` (if given); ``ttl`` is its hash's.
local function index_as(to, from, task_id, ttl)
  if from then redis.call('ZREM', from, task_id) end
  redis.call('ZADD', to, redis.call('HGET', KEYS[1], 'created'), task_id)
  local extra = redis.call('ZCARD', to) - INDEX_CAP
  if extra > 0 then redis.call('ZREMRANGEBYRANK', to, 0, extra - 1) end
  extend(to, ttl)
end
"""
# A new task: all its fields and its TTL in one atomic step, or nothing; and indexed.
# ARGV: live_ttl task_id task_key_prefix field value... KEYS[6], for a unique task, is its
# key: held by a task still queued or running, that task's id is answered and nothing written.
_CREATE = _INDEX_STEP + """
if KEYS[6] then
  local holder = redis.call('GET', KEYS[6])
  if holder then
    local state = redis.call('HGET', ARGV[3] .. holder, 'state')
    if state == 'queued' or state == 'running' then return holder end
  end
  redis.call('SET', KEYS[6], ARGV[2], 'EX', ARGV[1])
  redis.call('HSET', KEYS[1], 'unique', KEYS[6])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
index_as(KEYS[3], nil, ARGV[2], ARGV[1])
return 1
"""
# ARGV as _CREATE: the record of a live task written again, only if the store has neither
# it nor its tombstone (it lost its data).
_RESTORE = _INDEX_STEP + """
if redis.call('EXISTS', KEYS[1], KEYS[2]) > 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('EXPIRE', KEYS[1], ARGV[1])
index_as(KEYS[3], nil, ARGV[2], ARGV[1])
return 1
"""
# KEYS: the task's hash, the paused hash (method or '*' -> since), the metrics hash.
# ARGV: started owner live_ttl. Idempotent: a retry whose first try was applied (its reply
# lost to a Redis that went away) finds the same start by the same owner, and succeeds.
# -1: not started, as its method is paused.
_MARK_RUNNING = _INDEX_STEP + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' and redis.call('HGET', KEYS[1], 'owner') == ARGV[2]
   and redis.call('HGET', KEYS[1], 'started') == ARGV[1] then return 1 end
if state ~= 'queued' then return 0 end
local method = redis.call('HGET', KEYS[1], 'method')
if redis.call('HEXISTS', KEYS[2], '*') == 1 or redis.call('HEXISTS', KEYS[2], method) == 1 then
  return -1
end
redis.call('HSET', KEYS[1], 'state', 'running', 'started', ARGV[1], 'heartbeat', ARGV[1],
           'owner', ARGV[2], 'progress', '0.0', 'touched', '0', 'message', '')
redis.call('EXPIRE', KEYS[1], ARGV[3])
count(KEYS[3], 'started', method)
return 1
"""
# ARGV: progress heartbeat live_ttl touched [message]: the message only if given.
_PROGRESS = """
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1], 'heartbeat', ARGV[2], 'touched', ARGV[4])
if ARGV[5] then redis.call('HSET', KEYS[1], 'message', ARGV[5]) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""
# KEYS: the hashes of running tasks, then the live index (its TTL kept as theirs). A
# unique task's key lives as long as its hash: a task that runs longer than live_ttl
# must not let a second one start with the same arguments.
_HEARTBEAT = _INDEX_STEP + """
for i = 1, #KEYS - 1 do
  local key = KEYS[i]
  if redis.call('HGET', key, 'state') == 'running' then
    redis.call('HSET', key, 'heartbeat', ARGV[1])
    redis.call('EXPIRE', key, ARGV[2])
    local unique = redis.call('HGET', key, 'unique')
    if unique then redis.call('EXPIRE', unique, ARGV[2]) end
  end
end
if redis.call('EXISTS', KEYS[#KEYS]) == 1 then extend(KEYS[#KEYS], ARGV[2]) end
return 1
"""
# end_task(state, finished, error, result, result_ttl, tombstone_ttl, task_id): record the
# end, and move the task to the ended index; a task dismissed before it ended is deleted
# instead (its tombstone says 'dismissed'; the dismissal took it out of the index).
_END_TASK = _INDEX_STEP + """
local function stone(why)
  local caller = redis.call('HGET', KEYS[1], 'caller')
  if caller and caller ~= '' then return why .. '|' .. caller end
  return why
end
local function end_task(state, finished, err, result, result_ttl, tombstone_ttl, task_id)
  local method = redis.call('HGET', KEYS[1], 'method')
  local began = tonumber(redis.call('HGET', KEYS[1], 'started'))
  if redis.call('HGET', KEYS[1], 'state') == 'running' and began and began > 0 then
    ran(KEYS[5], method, math.max(0, tonumber(finished) - began))
  end
  count(KEYS[5], state, method)
  local unique = redis.call('HGET', KEYS[1], 'unique')
  if unique and redis.call('GET', unique) == task_id then redis.call('DEL', unique) end
  redis.call('HSET', KEYS[1], 'state', state, 'finished', finished, 'error', err, 'progress', '1.0')
  if state == 'succeeded' then
    redis.call('HSET', KEYS[1], 'result', result)
    redis.call('HDEL', KEYS[1], 'job')  -- it will not run again
  end
  if redis.call('HGET', KEYS[1], 'started') == '0' then
    redis.call('HSET', KEYS[1], 'started', finished)
  end
  if redis.call('HGET', KEYS[1], 'dismissed') == '1' then
    redis.call('DEL', KEYS[1])
    return
  end
  redis.call('EXPIRE', KEYS[1], result_ttl)
  redis.call('SET', KEYS[2], stone('expired'), 'EX', result_ttl + tombstone_ttl)
  index_as(KEYS[4], KEYS[3], task_id, result_ttl)
end
"""
# ARGV: state finished error result_ttl result tombstone_ttl attempt ('0': any attempt)
#       durations_prefix history durations_ttl ended_channel task_id.
# A success adds its duration to its method's history (the newest first, HISTORY kept);
# every end is published on the ended channel, for the waiters of _wait.
_FINISH = _END_TASK + """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'queued' and state ~= 'running' and state ~= 'lost' then return 0 end
if state == 'lost' and ARGV[1] == 'lost' then return 0 end
if ARGV[7] ~= '0' and redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[7] then return 0 end
local method = redis.call('HGET', KEYS[1], 'method')
local started = tonumber(redis.call('HGET', KEYS[1], 'started'))
end_task(ARGV[1], ARGV[2], ARGV[3], ARGV[5], tonumber(ARGV[4]), tonumber(ARGV[6]), ARGV[12])
if ARGV[1] == 'succeeded' and started and started > 0 then
  local history = ARGV[8] .. method
  redis.call('LPUSH', history, tostring(tonumber(ARGV[2]) - started))
  redis.call('LTRIM', history, 0, tonumber(ARGV[9]) - 1)
  redis.call('EXPIRE', history, ARGV[10])
end
redis.call('PUBLISH', ARGV[11], ARGV[12])
return 1
"""
# ARGV: attempt note owner live_ttl task_id now. A lost task lives again: its live TTL back,
# no tombstone. A running attempt that ends so is timed, as any run that ends.
# Idempotent, as _MARK_RUNNING: the same attempt already queued by the same owner succeeds.
_REQUEUE = _INDEX_STEP + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' and redis.call('HGET', KEYS[1], 'attempt') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'owner') == ARGV[3] then return 1 end
if state ~= 'running' and state ~= 'lost' then return 0 end
if redis.call('HGET', KEYS[1], 'cancel_requested') ~= '0' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempt')) ~= tonumber(ARGV[1]) - 1 then return 0 end
local began = tonumber(redis.call('HGET', KEYS[1], 'started'))
if state == 'running' and began and began > 0 then
  ran(KEYS[5], redis.call('HGET', KEYS[1], 'method'), math.max(0, tonumber(ARGV[6]) - began))
end
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempt', ARGV[1], 'error', ARGV[2], 'owner', ARGV[3],
           'progress', '0.0', 'started', '0', 'finished', '0', 'heartbeat', '0', 'touched', '0',
           'message', '')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('DEL', KEYS[2])
index_as(KEYS[3], KEYS[4], ARGV[5], ARGV[4])
count(KEYS[5], 'retried', redis.call('HGET', KEYS[1], 'method'))
return 1
"""
# ARGV: attempt owner live_ttl task_id. An ended task (failed, lost, cancelled) queued again
# as its next attempt, as new but for its id, arguments and caller; idempotent as _REQUEUE.
# KEYS[6], the dismissed channel, hears of it: every process drops its copy of the task.
_RETRY = _INDEX_STEP + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'queued' and redis.call('HGET', KEYS[1], 'attempt') == ARGV[1]
   and redis.call('HGET', KEYS[1], 'owner') == ARGV[2] then return 1 end
if state ~= 'failed' and state ~= 'lost' and state ~= 'cancelled' then return 0 end
if redis.call('HGET', KEYS[1], 'dismissed') == '1' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'attempt')) ~= tonumber(ARGV[1]) - 1 then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'attempt', ARGV[1], 'error', '', 'owner', ARGV[2],
           'progress', '0.0', 'started', '0', 'finished', '0', 'heartbeat', '0', 'touched', '0',
           'message', '', 'cancel_requested', '0')
redis.call('HDEL', KEYS[1], 'result', 'unique')
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[2])
index_as(KEYS[3], KEYS[4], ARGV[4], ARGV[3])
count(KEYS[5], 'retried', redis.call('HGET', KEYS[1], 'method'))
redis.call('PUBLISH', KEYS[6], ARGV[4])
return 1
"""
# cancel(now, result_ttl, tombstone_ttl, queued_error): the shared step of cancel and dismiss.
_CANCEL_STEP = _END_TASK + """
local function cancel(now, result_ttl, tombstone_ttl, queued_error, task_id)
  local state = redis.call('HGET', KEYS[1], 'state')
  if state == 'queued' then
    redis.call('HSET', KEYS[1], 'cancel_requested', now)
    end_task('cancelled', now, queued_error, '', result_ttl, tombstone_ttl, task_id)
  elseif state == 'running' and redis.call('HGET', KEYS[1], 'cancel_requested') == '0' then
    redis.call('HSET', KEYS[1], 'cancel_requested', now)
  end
end
"""
# ARGV: now result_ttl tombstone_ttl queued_error task_id field...; returns the record's fields.
# KEYS[6] and KEYS[7] are the dismissal and ended channels: a queued task cancelled has ended.
_CANCEL = _CANCEL_STEP + """
if redis.call('HGET', KEYS[1], 'dismissed') ~= '0' then return false end
local was = redis.call('HGET', KEYS[1], 'state')
cancel(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
if was == 'queued' then redis.call('PUBLISH', KEYS[7], ARGV[5]) end
return redis.call('HMGET', KEYS[1], unpack(ARGV, 6))
"""
# KEYS and ARGV as _CANCEL; returns the record's fields after the
# cancel step, then forgets it (a running task: once it ends) and tells every process.
_DISMISS = _CANCEL_STEP + """
if redis.call('HGET', KEYS[1], 'dismissed') ~= '0' then return false end
cancel(ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5])
local record = redis.call('HMGET', KEYS[1], unpack(ARGV, 6))
redis.call('SET', KEYS[2], stone('dismissed'), 'EX', tonumber(ARGV[3]))
redis.call('ZREM', KEYS[3], ARGV[5])
redis.call('ZREM', KEYS[4], ARGV[5])
if redis.call('HGET', KEYS[1], 'state') == 'running' then
  redis.call('HSET', KEYS[1], 'dismissed', '1')
else
  redis.call('DEL', KEYS[1])
end
redis.call('PUBLISH', KEYS[6], ARGV[5])
redis.call('PUBLISH', KEYS[7], ARGV[5])
return record
"""
# KEYS[1]: an index set. ARGV: top offset count task_prefix state method has_caller caller
# wanted. Walks ``count`` ids newest first from ``offset`` below score ``top``, reading only
# the fields the filters need ('' state or method: any; has_caller '0': any caller), until
# ``wanted`` match; drops the ids of hashes gone. Answers {walked, dropped, {id, score, ...}}.
_FILTER_INDEX = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT',
                       ARGV[2], ARGV[3])
local matches, dead, walked = {}, {}, 0
local wanted = tonumber(ARGV[9])
for i = 1, #ids, 2 do
  walked = walked + 1
  local id = ids[i]
  local f = redis.call('HMGET', ARGV[4] .. id, 'state', 'method', 'caller', 'dismissed')
  if not f[1] then
    dead[#dead + 1] = id
  elseif f[4] ~= '1' and (ARGV[5] == '' or f[1] == ARGV[5]) and (ARGV[6] == '' or f[2] == ARGV[6])
         and (ARGV[7] == '0' or (f[3] or '') == ARGV[8]) then
    matches[#matches + 1] = id
    matches[#matches + 1] = ids[i + 1]
    if #matches / 2 >= wanted then break end
  end
end
if #dead > 0 then redis.call('ZREM', KEYS[1], unpack(dead)) end
return {walked, #dead, matches}
"""
_CANCEL_REQUESTS = """
local asked = {}
for i, key in ipairs(KEYS) do
  local when = redis.call('HGET', key, 'cancel_requested')
  if when and when ~= '0' then asked[#asked + 1] = i end
end
return asked
"""
SCRIPTS = {
    "create": _CREATE, "restore": _RESTORE, "mark_running": _MARK_RUNNING, "progress": _PROGRESS,
    "heartbeat": _HEARTBEAT, "finish": _FINISH, "requeue": _REQUEUE, "retry": _RETRY, "cancel": _CANCEL,
    "dismiss": _DISMISS, "cancel_requests": _CANCEL_REQUESTS, "filter_index": _FILTER_INDEX,
}
