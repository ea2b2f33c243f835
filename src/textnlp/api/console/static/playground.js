// The playground's stream: the form is POSTed with fetch() (EventSource cannot POST) and the
// Server-Sent Events of /console/playground/stream are read from the body as they arrive.
// Events: start {model, samples}, token {index, text}, sample {index, finish_reason, usage,
// cost_usd}, done {usage, cost_usd, latency_ms, first_token_ms}, error {error: {message}}.
// Generated text is only ever set as textContent: it is never read as HTML.
"use strict";
(() => {
  const form = document.getElementById("playground-form");
  const output = document.getElementById("output");
  const status = document.getElementById("run-status");
  if (!form || !output || !status) return;
  let running = null; // the AbortController of the stream in progress

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (_) {
      return "";
    }
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function money(value) {
    return value === null || value === undefined ? "no price" : "$" + value.toFixed(6);
  }

  // The message of an error answer: the console's error page (or fragment) has it in .flash.
  async function errorMessage(response) {
    const text = await response.text();
    const page = new DOMParser().parseFromString(text, "text/html");
    const flash = page.querySelector(".flash-error, .flash");
    return (flash ? flash.textContent.trim() : "") || "the request failed (" + response.status + ")";
  }

  function sampleBox(index, samples) {
    let box = output.querySelector('[data-sample="' + index + '"]');
    if (box) return box;
    box = element("article", "card sample");
    box.dataset.sample = String(index);
    box.append(element("h3", "", samples > 1 ? "Sample " + (index + 1) : "Sample"));
    box.append(element("pre", "sample-text"));
    box.append(element("p", "muted sample-meta"));
    output.append(box);
    return box;
  }

  function handle(name, data, run) {
    if (name === "start") {
      run.samples = data.samples;
      status.textContent = "Generating with " + data.model + "…";
    } else if (name === "token") {
      sampleBox(data.index, run.samples).querySelector(".sample-text").textContent += data.text;
    } else if (name === "sample") {
      const usage = data.usage || { prompt_tokens: 0, completion_tokens: 0 };
      sampleBox(data.index, run.samples).querySelector(".sample-meta").textContent =
        usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion tokens · " +
        "stopped: " + (data.finish_reason || "?") + " · " + money(data.cost_usd);
    } else if (name === "done") {
      const usage = data.usage;
      const stats = element("p", "run-stats");
      stats.id = "run-stats";
      stats.textContent =
        usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion = " +
        usage.total_tokens + " tokens · latency " + Math.round(data.latency_ms) + " ms" +
        (data.first_token_ms === null ? "" : " (first token " + Math.round(data.first_token_ms) + " ms)") +
        " · cost " + money(data.cost_usd);
      output.append(stats);
      status.textContent = "Done: " + data.samples + (data.samples === 1 ? " sample." : " samples.");
      run.done = true;
    } else if (name === "error") {
      const message = (data.error && data.error.message) || "the stream failed";
      output.append(element("p", "flash flash-error", message));
      status.textContent = "Failed: " + message;
      run.done = true;
    }
  }

  // One event block ("event: x\ndata: ...\n") -> [name, parsed data].
  function parseBlock(block) {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue; // a keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    try {
      return [name, JSON.parse(data.join("\n"))];
    } catch (_) {
      return null;
    }
  }

  async function generate() {
    if (running) running.abort();
    const controller = new AbortController();
    running = controller;
    const run = { samples: 1, done: false };
    const button = document.getElementById("pg-run");
    output.replaceChildren();
    output.setAttribute("aria-busy", "true");
    status.textContent = "Starting…";
    if (button) button.disabled = true;
    try {
      const response = await fetch("/console/playground/stream", {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { "X-CSRF-Token": csrfToken(), Accept: "text/event-stream" },
        credentials: "same-origin",
        signal: controller.signal,
      });
      if (!response.ok || !response.body) {
        handle("error", { error: { message: await errorMessage(response) } }, run);
        return;
      }
      const type = response.headers.get("content-type") || "";
      if (!type.startsWith("text/event-stream")) {
        // fetch followed a redirect to the login page: the session has ended.
        const ended = new URL(response.url).pathname === "/console/login";
        const message = ended
          ? "your session has ended: log in again (in another tab, to keep this form)"
          : "the server did not answer with a stream: reload the page";
        handle("error", { error: { message } }, run);
        return;
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseBlock(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (event) handle(event[0], event[1], run);
        }
      }
      if (!run.done) handle("error", { error: { message: "the stream ended early" } }, run);
    } catch (error) {
      if (error.name !== "AbortError") {
        handle("error", { error: { message: "the connection failed: " + error.message } }, run);
      }
    } finally {
      if (running === controller) running = null;
      output.setAttribute("aria-busy", "false");
      const current = document.getElementById("pg-run");
      if (current) current.disabled = false;
    }
  }

  // A recipe's preview is an htmx request of its button: the status line follows it too.
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt && event.detail.elt.id === "pg-run") {
      if (running) running.abort();
      status.textContent = "Generating a preview…";
    }
  });
  document.body.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt && event.detail.elt.id === "pg-run") {
      status.textContent = event.detail.successful ? "Preview ready." : "The preview failed.";
    }
  });

  form.addEventListener("submit", (event) => {
    const submitter = event.submitter;
    if (submitter && submitter.id !== "pg-run") return;
    event.preventDefault();
    const button = document.getElementById("pg-run");
    if (button && button.hasAttribute("hx-post") && window.htmx) {
      window.htmx.trigger(button, "pg-preview"); // a recipe: its preview (htmx)
    } else {
      generate();
    }
  });
})();
