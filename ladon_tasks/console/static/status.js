"use strict";
// The status page: every 2 s it reads the console's JSON API (relative to this page, so
// the application may be mounted under any prefix) and updates its tables in place.
// Everything from the API reaches the DOM through textContent or properties, never as HTML.
(() => {
  const REFRESH_MS = 2000;   // between the end of one refresh and the start of the next
  const TIMEOUT_MS = 10000;  // a refresh that takes longer is given up and counts as a failure
  const FAILURES = 20;       // the newest failed and lost tasks shown
  const NEWEST = 20;         // the newest tasks of any state shown
  const ACTIVE = 100;        // the most running (and queued) tasks shown
  const COUNTS = ["queued", "running", "succeeded", "failed", "lost", "cancelled", "retried", "started"];
  const ENDED_BADLY = new Set(["failed", "lost", "cancelled"]);
  const NOT_ENDED = new Set(["queued", "running"]);

  const api = apiBase(location.pathname);
  const byId = (id) => document.getElementById(id);
  const auto = byId("auto-refresh");
  let timer = null;        // the next scheduled refresh
  let inFlight = false;    // a refresh is running: never two at once
  let again = false;       // someone asked for a refresh while one ran
  let lastGood = null;     // when the last refresh succeeded

  /** The API's URL for a page at ``<root>/_tasks`` or ``<root>/_tasks/``. */
  function apiBase(path) {
    const at = path.lastIndexOf("/_tasks");
    return (at < 0 ? "" : path.slice(0, at)) + "/_tasks/api/";
  }

  class Problem extends Error {
    /** A failed call: ``reached`` false when no HTTP answer came at all. */
    constructor(reached, code, message) {
      super(message);
      this.reached = reached;
      this.code = code;
    }
    get text() { return this.code ? this.code + ": " + this.message : this.message; }
  }

  async function call(method, path, signal) {
    let response;
    try {
      response = await fetch(api + path, {method, signal, cache: "no-store", credentials: "same-origin",
                                          headers: {Accept: "application/json"}});
    } catch (error) {
      const why = error.name === "AbortError" ? "no answer within " + TIMEOUT_MS / 1000 + " s" : error.message;
      throw new Problem(false, "", why);
    }
    let body = null;
    try {
      body = await response.json();
    } catch (error) {
      body = null;
    }
    if (!response.ok) {
      const told = body && body.error;
      throw new Problem(true, told ? told.code : "HTTP " + response.status,
                        told ? told.message : response.statusText || "the server answered no JSON");
    }
    if (body === null) {
      throw new Problem(true, "HTTP " + response.status, "the server answered no JSON");
    }
    return body;
  }

  // -- refreshing ----------------------------------------------------------------------

  async function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    clearTimeout(timer);
    timer = null;
    inFlight = true;
    document.body.dataset.refreshing = "true";
    const control = new AbortController();
    const watchdog = setTimeout(() => control.abort(), TIMEOUT_MS);
    const get = (path) => call("GET", path, control.signal);
    try {
      const [summary, running, queued, failed, lost, newest] = await Promise.all([
        get("summary"), get("tasks?state=running&limit=" + ACTIVE), get("tasks?state=queued&limit=" + ACTIVE),
        get("tasks?state=failed&limit=" + FAILURES), get("tasks?state=lost&limit=" + FAILURES),
        get("tasks?limit=" + NEWEST)]);
      showPaused(summary.paused);
      showTotals(summary.totals);
      showMethods(summary.methods, summary.paused);
      showTasks("active", running.tasks.concat(queued.tasks), ACTIVE_CELLS);
      showTasks("failures", newestEnded(failed.tasks.concat(lost.tasks)).slice(0, FAILURES), FAILURE_CELLS);
      showTasks("recent", newest.tasks, RECENT_CELLS);
      lastGood = new Date();
      byId("updated").textContent = "updated " + format.clock(lastGood);
      showConnection(null);
    } catch (error) {
      showConnection(error instanceof Problem ? error : new Problem(true, "", String(error)));
    } finally {
      clearTimeout(watchdog);
      inFlight = false;
      document.body.dataset.refreshing = "false";
      if (again) {
        again = false;
        refresh();
      } else {
        schedule();
      }
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = auto.checked && !document.hidden ? setTimeout(refresh, REFRESH_MS) : null;
  }

  function showConnection(problem) {
    const line = byId("connection");
    byId("main").classList.toggle("stale", problem !== null);
    if (problem === null) {
      line.hidden = true;
      line.textContent = "";
      return;
    }
    const since = lastGood ? " The figures below are from " + format.clock(lastGood) + "." : "";
    const retry = auto.checked ? " Trying again every " + REFRESH_MS / 1000 + " s." : "";
    line.dataset.reached = String(problem.reached);
    line.textContent = (problem.reached ? "The server could not answer: " : "Could not reach the server: ")
      + problem.text + "." + since + retry;
    line.hidden = false;
  }

  // -- the summary ---------------------------------------------------------------------

  function showPaused(paused) {
    const state = byId("paused-state");
    if (paused.all) {
      state.textContent = "Paused: no queued task starts";
    } else if (paused.methods.length) {
      state.textContent = "Paused: " + paused.methods.join(", ");
    } else {
      state.textContent = "Running: queued tasks start";
    }
    const anything = paused.all || paused.methods.length > 0;
    state.className = "badge " + (anything ? "paused" : "unpaused");
    state.dataset.paused = paused.all ? "all" : anything ? "some" : "none";
    settle(byId("pause-all"), {disabled: paused.all});
    settle(byId("resume-all"), {disabled: !anything});
  }

  function showTotals(totals) {
    for (const name of COUNTS) {
      byId("count-" + name).textContent = format.count(totals[name]);
    }
  }

  function showMethods(methods, paused) {
    const pausedMethods = new Set(paused.methods);
    const cells = ["method", ...COUNTS, "p50", "p90", "starting"];
    syncRows("methods", methods, (item) => item.method, cells, (row, item) => {
      cell(row, "method").textContent = item.method;
      for (const name of COUNTS) {
        cell(row, name).textContent = format.count(item[name]);
      }
      cell(row, "p50").textContent = format.duration(item.p50);
      cell(row, "p90").textContent = format.duration(item.p90);
      row.classList.toggle("idle", COUNTS.every((name) => !item[name]));
      const held = paused.all || pausedMethods.has(item.method);
      row.dataset.paused = String(held);
      const starting = cell(row, "starting");
      const label = ensure(starting, "span", "badge");
      label.textContent = held ? "paused" : "starts";
      label.className = "badge " + (held ? "paused" : "unpaused");
      const own = pausedMethods.has(item.method);
      const button = ensure(starting, "button", "method-toggle");
      button.dataset.method = item.method;
      settle(button, {action: own ? "resume" : "pause", label: own ? "Resume" : "Pause",
                      disabled: paused.all && !own});
    });
  }

  // -- the task tables -----------------------------------------------------------------

  /** The cells of each task table, by class name: ``c-<name>``. */
  const ACTIVE_CELLS = ["id", "method", "owner", "state", "progress", "message", "duration", "silent",
                        "health", "attempt", "actions"];
  const FAILURE_CELLS = ["finished", "id", "method", "owner", "state", "attempt", "error", "actions"];
  const RECENT_CELLS = ["created", "id", "method", "owner", "state", "percent", "duration", "attempt",
                        "actions"];
  const NUMERIC = new Set(["duration", "silent", "attempt", "percent", ...COUNTS, "p50", "p90"]);

  const FILL = {
    id: (td, task) => { td.textContent = task.task_id; },
    method: (td, task) => { td.textContent = task.method; },
    owner: (td, task) => {
      td.textContent = task.owner === null ? "(none)" : task.owner;
      td.classList.toggle("none", task.owner === null);
    },
    state: (td, task) => {
      const badge = ensure(td, "span", "badge");
      const cancelling = task.cancel_requested && NOT_ENDED.has(task.state);
      badge.textContent = task.state + (cancelling ? " · cancelling" : "");
      badge.className = "badge state-" + task.state;
    },
    progress: (td, task) => {
      const bar = ensure(td, "progress", "bar");
      bar.max = 1;
      bar.value = task.progress;
      ensure(td, "span", "pct").textContent = format.percent(task.progress);
    },
    // A task's progress reads 1.0 however it ended: only a success's 100% means anything.
    percent: (td, task) => { td.textContent = ENDED_BADLY.has(task.state) ? "–" : format.percent(task.progress); },
    message: (td, task) => { td.textContent = task.message; },
    duration: (td, task) => { td.textContent = task.started ? format.duration(task.duration) : "–"; },
    silent: (td, task) => { td.textContent = task.state === "running" ? format.duration(task.silent_for) : "–"; },
    health: (td, task) => {
      if (task.health === null) {
        td.textContent = "–";
        return;
      }
      const badge = ensure(td, "span", "badge");
      badge.textContent = task.health;
      badge.className = "badge health-" + task.health;
    },
    attempt: (td, task) => { td.textContent = String(task.attempt); },
    error: (td, task) => { td.textContent = task.error; },
    created: (td, task) => { format.when(td, task.created); },
    finished: (td, task) => { format.when(td, task.finished); },
    actions: (td, task) => {
      if (NOT_ENDED.has(task.state)) {
        const asked = Boolean(task.cancel_requested);
        settle(ensure(td, "button", "task-action"), {action: "cancel", label: asked ? "Cancelling…" : "Cancel",
                                                      disabled: asked, taskId: task.task_id});
      } else if (ENDED_BADLY.has(task.state)) {
        settle(ensure(td, "button", "task-action"), {action: "retry", label: "Retry", disabled: false,
                                                      taskId: task.task_id});
      } else {
        td.replaceChildren();
      }
    },
  };

  function showTasks(table, tasks, cells) {
    syncRows(table, tasks, (task) => task.task_id, cells, (row, task) => {
      row.dataset.taskId = task.task_id;
      row.dataset.state = task.state;
      row.dataset.progress = String(task.progress);
      row.dataset.attempt = String(task.attempt);
      for (const name of cells) {
        FILL[name](cell(row, name), task);
      }
    });
  }

  /** Failed and lost tasks, the one that ended last first. */
  function newestEnded(tasks) {
    const key = (task) => task.finished || task.created || "";
    return tasks.sort((a, b) => (key(a) < key(b) ? 1 : key(a) > key(b) ? -1 : 0));
  }

  // -- keeping rows in place -----------------------------------------------------------

  /** Make ``table``'s body show ``items`` in order, reusing the row of each key so that an
   * element (a button under the pointer, say) stays the same element from one refresh to
   * the next. */
  function syncRows(table, items, keyOf, cells, update) {
    const element = byId(table);
    const body = element.tBodies[0];
    const rows = new Map(Array.from(body.rows, (row) => [row.dataset.key, row]));
    let previous = null;
    for (const item of items) {
      const key = keyOf(item);
      let row = rows.get(key);
      if (row === undefined) {
        row = document.createElement("tr");
        row.dataset.key = key;
        for (const name of cells) {
          const td = row.insertCell();
          td.className = "c-" + name + (NUMERIC.has(name) ? " num" : "");
        }
      }
      rows.delete(key);
      update(row, item);
      const wanted = previous === null ? body.firstElementChild : previous.nextElementSibling;
      if (row !== wanted) {
        body.insertBefore(row, wanted);
      }
      previous = row;
    }
    for (const row of rows.values()) {
      row.remove();
    }
    element.hidden = items.length === 0;
    element.parentElement.querySelector(".empty").hidden = items.length > 0;
  }

  function cell(row, name) {
    return row.querySelector(".c-" + name);
  }

  /** The child ``tag.className`` of ``parent``, made (in place of any bare text) if it has none. */
  function ensure(parent, tag, className) {
    let child = parent.querySelector(":scope > " + tag + "." + className);
    if (child === null) {
      for (const node of Array.from(parent.childNodes)) {
        if (node.nodeType === Node.TEXT_NODE) {
          node.remove();
        }
      }
      child = document.createElement(tag);
      child.className = className;
      if (tag === "button") {
        child.type = "button";
      }
      parent.append(child);
    }
    return child;
  }

  /** Give a button its action, label and state, unless its own request is on its way. */
  function settle(button, {action, label, disabled, taskId}) {
    if (action !== undefined) {
      button.dataset.action = action;
    }
    if (taskId !== undefined) {
      button.dataset.taskId = taskId;
      button.classList.toggle("cancel", action === "cancel");
      button.classList.toggle("retry", action === "retry");
    }
    if (label !== undefined) {
      button.textContent = label;
    }
    if (button.dataset.pending !== "true") {
      button.disabled = disabled;
    }
  }

  // -- the buttons ---------------------------------------------------------------------

  async function act(button) {
    const action = button.dataset.action;
    const taskId = button.dataset.taskId;
    const method = button.dataset.method;
    let path = action;
    let what = action;
    if (taskId) {
      path = "tasks/" + encodeURIComponent(taskId) + "/" + action;
      what = action + " task " + taskId;
    } else if (method) {
      path += "?method=" + encodeURIComponent(method);
      what += " " + method;
    } else {
      what += " every method";
    }
    button.dataset.pending = "true";
    button.disabled = true;
    try {
      await call("POST", path);
      showActionError(null);
    } catch (error) {
      showActionError("Could not " + what + ": " + (error instanceof Problem ? error.text : String(error)));
    } finally {
      delete button.dataset.pending;
      button.disabled = false;
      refresh();
    }
  }

  function showActionError(text) {
    byId("action-error-text").textContent = text || "";
    byId("action-error").hidden = !text;
  }

  // -- start ---------------------------------------------------------------------------

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button !== null && !button.disabled) {
      act(button);
    }
  });
  byId("action-error-close").addEventListener("click", () => showActionError(null));
  auto.addEventListener("change", () => (auto.checked ? refresh() : schedule()));
  document.addEventListener("visibilitychange", () => (document.hidden ? schedule() : refresh()));
  refresh();
})();
