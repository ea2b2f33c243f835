// The dataset viewer (records.html). htmx swaps in another page of records; the link or button
// that asked for it is gone, so focus moves to the records' heading: a keyboard or screen-reader
// user goes on from the new records instead of from the top of the document.
"use strict";
document.addEventListener("htmx:afterSettle", (event) => {
  const swapped = event.detail && event.detail.elt;
  if (!swapped || swapped.id !== "viewer") return;
  const active = document.activeElement;
  if (active && active !== document.body && active.isConnected) return;  // htmx kept the focus
  const heading = document.getElementById("records-heading");
  if (heading) heading.focus();
});
