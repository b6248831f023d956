// castkeep pages: small helpers shared by every page (no third-party code).
"use strict";
window.castkeep = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  // JSON API call with the session cookie and the CSRF header; rejects with the problem detail.
  async function api(method, path, body) {
    const init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrfToken();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    const text = await response.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!response.ok) {
      const detail = data && data.detail ? data.detail : ("the server answered " + response.status);
      const error = new Error(detail);
      error.status = response.status;
      throw error;
    }
    return data;
  }
  return { csrfToken: csrfToken, api: api };
})();
