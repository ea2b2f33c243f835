// Live progress of the jobs pages: an EventSource on the section's `data-job-events` URL
// (Server-Sent Events of /console/jobs/events, authenticated by the session cookie); each
// `progress` event updates the elements of its job (`[data-job-id]`): the state text, the
// progress bar and its text and, on a job's own page, the error, the cancel, delete and
// download controls; a `gone` event removes a deleted or purged job's row from the list.
// Without this script the pages still work: a reload shows the current state.
"use strict";
(() => {
  const section = document.querySelector("[data-job-events]");
  if (!section || !("EventSource" in window)) return;
  const single = section.dataset.jobSingle === "true";
  const terminal = new Set(["succeeded", "failed", "cancelled"]);

  const field = (root, name) => root.querySelector(`[data-field="${name}"]`);
  const show = (element, visible) => { if (element) element.hidden = !visible; };

  function update(root, job) {
    const before = root.dataset.state;
    root.dataset.state = job.state;
    const state = field(root, "state");
    if (state && state.textContent !== job.state) {
      state.textContent = job.state;
      state.className = `job-state job-state-${job.state}`;
    }
    const bar = root.querySelector("progress");
    if (bar) {
      bar.max = Math.max(job.total, 1);
      bar.value = job.done;
      bar.textContent = `${job.percent} %`;
    }
    const text = field(root, "progress-text");
    if (text) {
      const failed = job.failed ? `, ${job.failed} failed` : "";
      text.textContent = `${job.done} / ${job.total} (${job.percent} %)${failed}`;
    }
    if (!single) return;
    const error = field(root, "error");
    if (error && job.error) {
      error.textContent = job.error;
      show(field(root, "error-box"), true);
    }
    const heading = field(root, "error-heading");
    if (heading) heading.textContent = job.state === "failed" ? "Why it failed" : "Last error";
    const ended = terminal.has(job.state);
    root.querySelectorAll('[data-when="active"]').forEach((element) => show(element, !ended));
    root.querySelectorAll('[data-when="ended"]').forEach((element) => show(element, ended));
    // A file once there is one: a cancelled job's kept records come after its state.
    const download = field(root, "download");
    if (download && job.result_format) {
      download.textContent = `Download results (${job.result_format})`;
    }
    show(download, Boolean(job.result_format));
    if (ended && before !== job.state) show(field(root, "finished"), !terminal.has(before));
  }

  // A job the list has no row for (made in another tab, by the API or the CLI): fetch the
  // rows again, once at a time; the events that follow update the new rows.
  const rows = document.getElementById("job-rows");
  let fetchingRows = false;
  function addRowsFor(job) {
    if (single || !rows || fetchingRows || !window.htmx) return;
    if (rows.querySelector(`[data-job-id="${CSS.escape(job.id)}"]`)) return;
    fetchingRows = true;
    window.htmx
      .ajax("GET", "/console/jobs/rows", { target: rows, swap: "innerHTML" })
      .finally(() => { fetchingRows = false; });
  }

  let source = null;
  let settled = false;
  function onProgress(event) {
    let job;
    try {
      job = JSON.parse(event.data);
    } catch {
      return;
    }
    document.querySelectorAll("[data-job-id]").forEach((root) => {
      if (root.dataset.jobId === job.id) update(root, job);
    });
    addRowsFor(job);
    // One job's stream ends once nothing more will change (a cancelled or failed job's kept
    // records are published after its state); closing stops the browser from reconnecting.
    if (single && job.settled) {
      settled = true;
      stop();
    }
  }
  // A job the list's stream no longer tells of (deleted, purged): its row goes.
  function onGone(event) {
    let job;
    try {
      job = JSON.parse(event.data);
    } catch {
      return;
    }
    if (single || !rows) return;
    rows.querySelectorAll("[data-job-id]").forEach((row) => {
      if (row.dataset.jobId === job.id) row.remove();
    });
  }
  function listen() {
    if (source || settled) return;
    source = new EventSource(section.dataset.jobEvents);
    source.addEventListener("progress", onProgress);
    source.addEventListener("gone", onGone);
    source.addEventListener("error", onError);
    source.addEventListener("open", onOpen);
  }
  const say = (message) =>
    document.dispatchEvent(new CustomEvent("console:flash", { detail: { message } }));
  // A lost connection is retried by the browser (CONNECTING): the page says so meanwhile (a
  // server gone away left it showing the last state as if live) and clears that once a
  // stream opens again. A reconnect that got no stream is CLOSED for good, so the page says
  // so, and why when it was the user's bound on open streams (429: logging in again, as it
  // said, does not help; closing pages does).
  const RECONNECTING = "Live updates lost the server: reconnecting…";
  const STOPPED = "Live updates stopped: reload the page or log in again.";
  const TOO_MANY =
    "Live updates stopped: too many of your jobs pages are open. Close some, then reload this one.";
  let lost = false;
  // An EventSource does not say what its failed request was answered: ask the stream's URL
  // once, and let the stream go as soon as the answer's status is known.
  async function whyStopped() {
    const controller = new AbortController();
    try {
      const response = await fetch(section.dataset.jobEvents, {
        signal: controller.signal,
        redirect: "manual",
        headers: { Accept: "text/event-stream" },
      });
      return response.status === 429 ? TOO_MANY : STOPPED;
    } catch {
      return STOPPED;
    } finally {
      controller.abort();
    }
  }
  function onError() {
    if (!source) return;
    if (source.readyState === EventSource.CLOSED) {
      stop();
      whyStopped().then(say);
    } else if (!lost) {
      lost = true;
      say(RECONNECTING);
    }
  }
  function onOpen() {
    if (!lost) return;
    lost = false;
    const flash = document.getElementById("flash");
    if (flash && flash.textContent.trim() === RECONNECTING) flash.replaceChildren();
  }
  function stop() {
    if (source) source.close();
    source = null;
  }
  // A hidden tab lets its stream go: against a local server a browser has six connections to
  // it, and six open jobs pages would hold them all (every other page would wait). Shown
  // again, the page listens again; the first events say where each job is now.
  document.addEventListener("visibilitychange", () => (document.hidden ? stop() : listen()));
  if (!document.hidden) listen();
})();
