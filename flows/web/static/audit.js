// The audit page: while an audit started here runs, ask the server every 2 s and reload the
// page once it has ended (the new report is then shown).
"use strict";
(function () {
  const box = document.getElementById("audit-running");
  if (!box) return;
  async function poll() {
    try {
      const response = await fetch("/audit/status", { credentials: "same-origin", headers: { "Accept": "application/json" } });
      const data = await response.json();
      if (data.state !== "running") { window.location.reload(); return; }
    } catch (e) { /* the server may be busy: try again */ }
    window.setTimeout(poll, 2000);
  }
  window.setTimeout(poll, 2000);
})();
