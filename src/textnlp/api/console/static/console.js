// The console's shared behaviour (loaded by every page; no inline scripts: the CSP forbids them).
// `data-copy="#id"` buttons copy that element's text to the clipboard. `#flash` holds the
// message of the last htmx request that failed: a request that succeeds clears it. A request
// that reached no server (htmx:sendError, htmx:timeout) says so there too, and a page's own
// script may put a message there with a `console:flash` event ({detail: {message}}).
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (!source) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(
    () => { button.textContent = "Copied"; },
    () => { button.textContent = "Select and copy"; },
  );
});
document.addEventListener("htmx:afterRequest", (event) => {
  if (!event.detail.successful) return;
  const flash = document.getElementById("flash");
  if (flash) flash.replaceChildren();
});

// #flash is at the top of the page: the answer to a form or a button sent from further down
// (a catalogue's preview) would land out of sight. Not for a request a field's input made (the
// playground's commands), which would scroll the page away from the field being typed in.
function reveal(flash, elt) {
  if (!elt || elt.tagName === "FORM" || elt.tagName === "BUTTON") {
    flash.scrollIntoView({ block: "nearest" });
  }
}
// The message as the server's own (_flash.html), announced as an alert.
function flashError(message, elt) {
  const flash = document.getElementById("flash");
  if (!flash) return;
  const line = document.createElement("p");
  line.className = "flash flash-error";
  line.setAttribute("role", "alert");
  line.textContent = message;
  flash.replaceChildren(line);
  reveal(flash, elt);
}
const UNREACHABLE = "The server could not be reached; try again.";
document.addEventListener("htmx:sendError", (event) => flashError(UNREACHABLE, event.detail.elt));
document.addEventListener("htmx:timeout", (event) => flashError(UNREACHABLE, event.detail.elt));
document.addEventListener("console:flash", (event) => flashError(event.detail.message));
// An error answer is swapped into #flash before its request ends (detail.elt: the request's).
document.addEventListener("htmx:afterRequest", (event) => {
  const flash = document.getElementById("flash");
  if (!event.detail.successful && flash && flash.querySelector(".flash-error")) {
    reveal(flash, event.detail.elt);
  }
});
