// A request's page: polls the JSON API every second while the request runs (progress, status),
// swaps in the server-rendered gallery as variants arrive, then the review gallery's filter,
// full-size viewer, and approve / reject through the API (X-CSRF-Token header).
"use strict";
(function () {
  const root = document.getElementById("request");
  if (!root) return;
  const id = root.dataset.requestId;
  const FINAL = ["refused", "awaiting_approval", "completed", "failed"];
  const LABELS = { received: "Queued", running: "Running", awaiting_approval: "Awaiting approval",
    completed: "Completed", refused: "Refused", failed: "Failed" };
  const KINDS = { received: "info", running: "info", awaiting_approval: "info", completed: "ok",
    refused: "bad", failed: "bad" };
  let shown = { status: root.dataset.status, done: -1 };
  let filter = "all";

  function setStatus(status) {
    const badge = document.querySelector("#request-status .badge");
    badge.textContent = LABELS[status] || status;
    badge.className = "badge badge--" + (KINDS[status] || "plain");
    badge.dataset.status = status;
    root.dataset.status = status;
  }

  async function refreshGallery() {
    const response = await fetch("/requests/" + encodeURIComponent(id) + "/gallery",
      { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (!response.ok) return;
    // Server-rendered (autoescaped) markup of this app: the same template as the first page load.
    document.getElementById("gallery").innerHTML = await response.text();
    wireGallery();
  }

  async function poll() {
    let doc;
    try {
      doc = await window.castkeep.api("GET", "/api/v1/requests/" + encodeURIComponent(id));
    } catch (e) {
      document.getElementById("progress-text").textContent = "Could not read the progress (" + e.message + "); retrying…";
      return setTimeout(poll, 3000);
    }
    const p = doc.progress;
    const bar = document.querySelector("#progress .progress");
    bar.setAttribute("aria-valuenow", p.done);
    bar.setAttribute("aria-valuemax", p.total);
    bar.firstElementChild.style.width = (p.total ? Math.round(100 * p.done / p.total) : 0) + "%";
    document.getElementById("progress-text").textContent = doc.status === "received"
      ? "Queued: waiting for a worker…" : p.done + " of " + p.total + " variants made…";
    const final = FINAL.includes(doc.status);
    if (doc.status !== shown.status || p.done !== shown.done || final) {
      setStatus(doc.status);
      if (final) root.dataset.final = "true";
      await refreshGallery();
      shown = { status: doc.status, done: p.done };
    }
    if (final) {
      document.getElementById("progress").hidden = true;
      if (doc.refusals && doc.refusals.length) window.location.reload();  // shows the reasons
      return;
    }
    setTimeout(poll, 1000);
  }

  function applyFilter() {
    document.querySelectorAll(".filter__button").forEach(function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.filter === filter));
    });
    document.querySelectorAll(".variant").forEach(function (v) {
      v.hidden = filter !== "all" && v.dataset.filter !== filter;
    });
  }

  function selected(status) {
    return Array.from(document.querySelectorAll(".variant__select:checked"))
      .filter((b) => !status || b.dataset.status === status).map((b) => b.value);
  }

  function message(text, kind) {
    const el = document.getElementById("action-message");
    if (!el) return;
    el.textContent = text;
    el.className = "action-message" + (kind ? " action-message--" + kind : "");
  }

  async function decide(action) {
    const assets = selected("candidate");
    const comment = document.getElementById("review-comment").value.trim();
    if (!assets.length) return message("Select one or more candidate variants first.", "bad");
    if (action === "reject" && !comment) {
      document.getElementById("review-comment").focus();
      return message("Say why in the comment before rejecting.", "bad");
    }
    document.querySelectorAll("[data-action]").forEach((b) => { b.disabled = true; });
    message(action === "approve" ? "Publishing…" : "Rejecting…");
    try {
      const out = await window.castkeep.api("POST", "/api/v1/requests/" + encodeURIComponent(id) + "/" + action,
        { assets: assets, comment: comment });
      const done = action === "approve" ? (out.published || []).length : (out.rejected || []).length;
      const doc = await window.castkeep.api("GET", "/api/v1/requests/" + encodeURIComponent(id));
      setStatus(doc.status);
      await refreshGallery();
      message((action === "approve" ? "Published " : "Rejected ") + done + " variant" + (done === 1 ? "" : "s") + ".", "ok");
    } catch (e) {
      document.querySelectorAll("[data-action]").forEach((b) => { b.disabled = false; });
      message("Not done: " + e.message, "bad");
    }
  }

  function wireGallery() {
    document.querySelectorAll(".filter__button").forEach(function (b) {
      b.addEventListener("click", function () { filter = b.dataset.filter; applyFilter(); });
    });
    applyFilter();
    document.querySelectorAll(".variant__open").forEach(function (a) {
      a.addEventListener("click", function (e) {
        const box = document.getElementById("lightbox");
        if (!box.showModal) return;  // no <dialog>: the link opens the image itself
        e.preventDefault();
        const img = document.getElementById("lightbox-image");
        img.src = a.href;
        img.alt = a.dataset.caption;
        document.getElementById("lightbox-title").textContent = a.dataset.caption;
        box.showModal();
      });
    });
    document.querySelectorAll("[data-action]").forEach(function (b) {
      b.addEventListener("click", function () { decide(b.dataset.action); });
    });
    const zip = document.getElementById("selection");
    if (zip) {
      zip.addEventListener("submit", function (e) {
        const chosen = selected("published");
        if (!chosen.length) { e.preventDefault(); return message("Select one or more published variants to download.", "bad"); }
        // Only the published ones go into the archive.
        document.querySelectorAll(".variant__select:checked").forEach(function (b) {
          if (b.dataset.status !== "published") b.checked = false;
        });
      });
    }
  }

  const box = document.getElementById("lightbox");
  document.getElementById("lightbox-close").addEventListener("click", function () { box.close(); });
  box.addEventListener("click", function (e) { if (e.target === box) box.close(); });

  wireGallery();
  if (root.dataset.final !== "true") poll();
})();
