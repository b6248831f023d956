// The request form: number and slider kept in step, the light direction pickers, the lighting and
// camera switches, and the live consent check of every talent for the use being described.
"use strict";
(function () {
  const form = document.getElementById("request-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);

  // Sliders mirror the number fields (the number field is the one submitted and labelled).
  form.querySelectorAll("input[data-mirror]").forEach(function (range) {
    const number = $(range.dataset.mirror);
    range.addEventListener("input", function () { number.value = range.value; changed(number.id); });
    number.addEventListener("input", function () { range.value = number.value; changed(number.id); });
  });

  function toggle(box, fieldset) {
    const sync = function () { $(fieldset).disabled = !$(box).checked; };
    $(box).addEventListener("change", sync);
    sync();
  }
  toggle("lighting-on", "lighting-fields");
  toggle("camera-on", "camera-fields");

  // Pickers: azimuth seen from above (camera at the bottom, + = camera-right = image right);
  // elevation seen from the side (subject on the left, + = above eye level).
  const R = 62;
  function setValue(id, value) {
    const input = $(id);
    const lo = parseFloat(input.min), hi = parseFloat(input.max);
    value = Math.max(lo, Math.min(hi, Math.round(value)));
    input.value = value;
    $(id + "-range").value = value;
    changed(id);
  }
  function svgPoint(svg, event) {
    const box = svg.getBoundingClientRect();
    return { x: (event.clientX - box.left) * 160 / box.width, y: (event.clientY - box.top) * 160 / box.height };
  }
  function pick(svg, handler) {
    let dragging = false;
    svg.addEventListener("pointerdown", function (e) {
      if ($("lighting-fields").disabled) return;
      dragging = true; svg.setPointerCapture(e.pointerId); handler(svgPoint(svg, e));
    });
    svg.addEventListener("pointermove", function (e) { if (dragging) handler(svgPoint(svg, e)); });
    svg.addEventListener("pointerup", function () { dragging = false; });
  }
  pick($("azimuth-picker"), function (p) {
    setValue("key_azimuth", Math.atan2(p.x - 80, p.y - 80) * 180 / Math.PI);
  });
  pick($("elevation-picker"), function (p) {
    setValue("key_elevation", Math.atan2(80 - p.y, Math.max(0, p.x - 34)) * 180 / Math.PI);
  });
  function drawPickers() {
    const az = (parseFloat($("key_azimuth").value) || 0) * Math.PI / 180;
    const el = (parseFloat($("key_elevation").value) || 0) * Math.PI / 180;
    $("azimuth-dot").setAttribute("cx", (80 + R * Math.sin(az)).toFixed(1));
    $("azimuth-dot").setAttribute("cy", (80 + R * Math.cos(az)).toFixed(1));
    $("elevation-dot").setAttribute("cx", (34 + R * Math.cos(el)).toFixed(1));
    $("elevation-dot").setAttribute("cy", (80 - R * Math.sin(el)).toFixed(1));
  }
  // A rough black-body tint for the colour temperature (warm orange to cool blue).
  function drawSwatch() {
    const k = parseFloat($("colour_temperature").value) || 5600;
    const t = Math.max(0, Math.min(1, (k - 1500) / (12000 - 1500)));
    const warm = [255, 170, 90], neutral = [255, 250, 240], cool = [170, 200, 255];
    const mix = (a, b, f) => a.map((v, i) => Math.round(v + (b[i] - v) * f));
    const rgb = t < 0.4 ? mix(warm, neutral, t / 0.4) : mix(neutral, cool, (t - 0.4) / 0.6);
    $("colour-swatch").style.background = "rgb(" + rgb.join(",") + ")";
    $("colour-swatch").textContent = Math.round(k) + " K";
  }
  function changed(id) {
    if (id === "key_azimuth" || id === "key_elevation") drawPickers();
    if (id === "colour_temperature") drawSwatch();
  }
  drawPickers();
  drawSwatch();

  // Live consent check: re-asked whenever the use, the edits or the number of talents change.
  const list = $("talent-list");
  const status = $("talents-status");
  let pending = null;
  let asked = 0;  // answers to older questions are dropped
  function chosen() {
    return Array.from(list.querySelectorAll("input[name=talents]:checked")).map((i) => i.value);
  }
  function query() {
    const q = new URLSearchParams();
    ["channel", "territory", "purpose", "publish_date", "scene"].forEach(function (n) { q.set(n, $(n).value); });
    q.set("lighting", $("lighting-on").checked ? "1" : "0");
    q.set("camera", $("camera-on").checked ? "1" : "0");
    q.set("group", chosen().length > 1 ? "1" : "0");
    return q.toString();
  }
  function talentItem(t, checked) {
    const li = document.createElement("li");
    li.className = "talent" + (t.pending ? " talent--pending" : t.available ? "" : " talent--unavailable");
    li.dataset.talentId = t.id;
    const box = document.createElement("input");
    box.type = "checkbox"; box.name = "talents"; box.value = t.id; box.id = "talent-" + t.id;
    box.checked = checked && t.available;
    box.disabled = !t.available;
    const label = document.createElement("label");
    label.htmlFor = box.id;
    const name = document.createElement("span");
    name.className = "talent__name"; name.textContent = t.display_name;
    const badge = document.createElement("span");
    badge.className = "badge talent__state" + (t.available ? " badge--ok" : t.pending ? "" : " badge--warn");
    badge.textContent = t.available ? "Consent covers this use" : t.pending ? "Use not described yet" : "Not available";
    label.append(name, " ", badge);
    const why = document.createElement("ul");
    why.className = "talent__why"; why.id = box.id + "-why"; why.hidden = t.available;
    t.reasons.forEach(function (r) { const item = document.createElement("li"); item.textContent = r; why.append(item); });
    if (!t.available) box.setAttribute("aria-describedby", why.id);
    li.append(box, label, why);
    box.addEventListener("change", schedule);
    return li;
  }
  async function refresh() {
    const keep = new Set(chosen());
    const mine = ++asked;
    status.textContent = "Checking consent…";
    try {
      const talents = await window.castkeep.api("GET", "/requests/new/talents?" + query());
      if (mine !== asked) return;
      list.replaceChildren.apply(list, talents.map((t) => talentItem(t, keep.has(t.id))));
      const open = talents.filter((t) => t.available).length;
      status.textContent = open + " of " + talents.length + " talents available for this use.";
    } catch (e) {
      status.textContent = "The consent check failed: " + e.message;
    }
  }
  function schedule() {
    clearTimeout(pending);
    pending = setTimeout(refresh, 250);
  }
  form.querySelectorAll("[data-use], #scene").forEach(function (el) {
    el.addEventListener(el.type === "checkbox" ? "change" : "input", schedule);
  });
  list.querySelectorAll("input[name=talents]").forEach(function (b) { b.addEventListener("change", schedule); });
})();
