/*
 * gridgov ledger screens: progress while a ledger is checked or imported, and a file that is too
 * large refused before it is sent.
 *
 * A form with data-progress="<id>" names a hidden box with data-url (the progress fragment) and
 * data-every (seconds). While the browser waits for the form's answer (the check of a large
 * ledger takes a while), the box is shown and htmx polls the fragment into it. The upload form's
 * data-max-bytes and data-too-large refuse a file over the limit at once (the server checks it
 * again). Without this file the forms work the same, only without the progress.
 *
 * No inline script: settings and translated words come in data-* attributes. Loaded before
 * registry.js, whose "sent once" handler runs after this one.
 */
(function () {
  "use strict";

  function showError(form, text) {
    const box = form.querySelector(".form-errors");
    if (!box) {
      return;
    }
    let line = box.querySelector("p");
    if (!line) {
      line = document.createElement("p");
      box.appendChild(line);
    }
    line.textContent = text;
    box.hidden = false;
  }

  function tooLarge(form) {
    const limit = Number(form.dataset.maxBytes || 0);
    const input = form.querySelector("input[type=file]");
    if (!limit || !input || !input.files || !input.files.length) {
      return false;
    }
    return input.files[0].size > limit;
  }

  function startPolling(form) {
    const box = document.getElementById(form.dataset.progress || "");
    if (!box || box.dataset.started === "true") {
      return;
    }
    box.dataset.started = "true";
    box.hidden = false;
    const htmx = window.htmx;
    if (!htmx || !box.dataset.url) {
      return;
    }
    box.setAttribute("hx-get", box.dataset.url);
    box.setAttribute("hx-trigger", `every ${Number(box.dataset.every || 1)}s`);
    box.setAttribute("hx-swap", "innerHTML");
    htmx.process(box);
  }

  document.querySelectorAll("form[data-progress]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (form.dataset.maxBytes && tooLarge(form)) {
        event.preventDefault();
        event.stopImmediatePropagation();
        showError(form, form.dataset.tooLarge || "");
        return;
      }
      startPolling(form);
    });
    const input = form.querySelector("input[type=file]");
    if (input && form.dataset.maxBytes) {
      input.addEventListener("change", () => {
        if (tooLarge(form)) {
          showError(form, form.dataset.tooLarge || "");
        }
      });
    }
  });

  // back to a page kept in the browser's cache: its progress boxes are idle again
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("form[data-progress]").forEach((form) => {
      const box = document.getElementById(form.dataset.progress || "");
      if (box && box.dataset.started === "true") {
        // a fresh copy: htmx stops polling the old box once it has left the page
        const idle = box.cloneNode(true);
        idle.hidden = true;
        delete idle.dataset.started;
        idle.removeAttribute("hx-get");
        idle.removeAttribute("hx-trigger");
        idle.removeAttribute("hx-swap");
        box.replaceWith(idle);
      }
    });
  });
})();
