/*
 * gridgov's shared browser helpers, loaded (deferred) before the page scripts that use them,
 * cases.js and map.js, as window.gridgov:
 *
 *   el(tag, className, text)  a new element with that class and text (both optional);
 *   getJSON(url)              the JSON answer of a same-origin GET; an error answer throws an
 *                             Error with its message, .status and .detail.
 */
(function () {
  "use strict";

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  async function getJSON(url) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_err) {
      body = null;
    }
    if (!response.ok) {
      const error = new Error((body && body.message) || response.statusText || String(response.status));
      error.status = response.status;
      error.detail = (body && body.detail) || {};
      throw error;
    }
    return body;
  }

  window.gridgov = Object.assign(window.gridgov || {}, { el, getJSON });
})();
