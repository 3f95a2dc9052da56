// egressd dashboard: reads the JSON API of egressd-dashboard and its
// Server-Sent Events. Every value from the server is attacker-influenced
// (names seen on the wire) and goes into the page only as text
// (textContent / createTextNode), never as markup.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("token") || "";
  const REFRESH_MS = 10000;
  const COLORS = ["#2f6fdf", "#e39b19", "#2e8b57", "#c0392b", "#8e44ad", "#16a085", "#7f8c8d", "#d35400"];
  const alertsByKey = new Map();
  let redisUp = null;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const k of Object.keys(attrs || {})) e.setAttribute(k, String(attrs[k]));
    return e;
  }
  function td(text, cls) {
    const c = el("td", cls ? { class: cls } : null, text);
    c.title = c.textContent;
    return c;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function bytes(n) {
    n = Number(n) || 0;
    const u = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
    return (i ? n.toFixed(1) : String(n)) + " " + u[i];
  }
  function shortTime(t) {
    // "2025-10-15T08:01:01.000000+0000" -> "2025-10-15 08:01:01"
    return typeof t === "string" ? t.slice(0, 19).replace("T", " ") : "";
  }

  function setRedis(up) {
    if (redisUp === up) return;
    redisUp = up;
    document.getElementById("redis-banner").hidden = up;
    const s = document.getElementById("status");
    s.textContent = up ? "redis up" : "redis down";
    s.className = "status " + (up ? "up" : "down");
  }

  async function api(path) {
    const r = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {}, cache: "no-store" });
    if (r.status === 503) { setRedis(false); throw new Error("redis unavailable"); }
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    setRedis(true);
    return r.json();
  }

  // ---- alerts ---------------------------------------------------------------
  // Stream ids "ms-seq" in arrival order (as strings "-10" < "-6").
  function idCmp(x, y) {
    const [xm, xs] = String(x).split("-").map(Number);
    const [ym, ys] = String(y).split("-").map(Number);
    return xm !== ym ? xm - ym : (xs || 0) - (ys || 0);
  }
  function alertRow(a, fresh) {
    const tr = el("tr", { class: "sev-" + (a.severity_name || "low") + (fresh ? " new" : "") });
    tr.dataset.key = a.alert_key || a.id;
    const geo = [a.country, a.asn ? "AS" + a.asn : "", a.as_org].filter(Boolean).join(" ");
    const proto = [a.proto, a.dest_port, a.ndpi_proto || a.app_proto].filter(Boolean).join(" / ");
    tr.append(td(shortTime(a.last_seen || a.ts)), td(a.asset || a.src_ip, "asset"), td(a.role),
      td(a.dest_name || a.dest_ip, "dest"), td(geo), td(proto), td(a.signature || a.category),
      td(a.count, "count"), td(shortTime(a.first_seen)));
    tr.addEventListener("click", () => showFlows(a, tr));
    return tr;
  }
  function addAlert(a, fresh) {
    const key = a.alert_key || a.id;
    const tbody = document.querySelector("#alerts tbody");
    const old = alertsByKey.get(key);
    if (old) {
      // An update of a known alert: keep the newest entry of the key.
      if (idCmp(old.a.id, a.id) >= 0) return;
      old.tr.remove();
    }
    const tr = alertRow(a, fresh);
    alertsByKey.set(key, { a: a, tr: tr });
    // newest first by stream id (Redis arrival order)
    let before = null;
    for (const row of tbody.children) {
      const other = alertsByKey.get(row.dataset.key);
      if (other && idCmp(other.a.id, a.id) < 0) { before = row; break; }
    }
    tbody.insertBefore(tr, before);
    document.getElementById("alerts-empty").hidden = alertsByKey.size > 0;
  }
  async function loadAlerts() {
    const d = await api("/api/alerts?count=200");
    for (const a of d.alerts.slice().reverse()) addAlert(a, false);
    document.getElementById("alerts-empty").hidden = alertsByKey.size > 0;
  }
  async function showFlows(a, tr) {
    for (const r of document.querySelectorAll("#alerts tr.selected")) r.classList.remove("selected");
    tr.classList.add("selected");
    const sec = document.getElementById("flows-section");
    sec.hidden = false;
    document.getElementById("flows-pair").textContent = (a.src_ip || "") + " -> " + (a.dest_ip || "");
    const tbody = document.querySelector("#flows tbody");
    clear(tbody);
    try {
      const q = "/api/flows?src=" + encodeURIComponent(a.src_ip || "") + "&dest=" + encodeURIComponent(a.dest_ip || "");
      const d = await api(q);
      for (const f of d.flows) {
        const r = el("tr");
        r.append(td(shortTime(f.start)), td(shortTime(f.end)), td(f.src_ip + (f.src_port ? ":" + f.src_port : "")),
          td(f.dest_ip + (f.dest_port ? ":" + f.dest_port : "")), td(f.proto), td(f.ndpi_proto || f.app_proto),
          td(f.dest_name), td(bytes(f.bytes_toserver)), td(bytes(f.bytes_toclient)), td(f.reason));
        tbody.append(r);
      }
      if (!d.flows.length) {
        const r = el("tr");
        r.append(el("td", { colspan: "10", class: "empty" }, "No flow records of this pair in the recent records."));
        tbody.append(r);
      }
    } catch (e) { /* the banner says why */ }
  }

  // ---- charts -----------------------------------------------------------------
  // Bars of one series (values per minute), scaled to the largest.
  function barChart(values, color) {
    const w = 600, h = 90, n = values.length || 1;
    const max = Math.max(1, ...values);
    const svg = svgEl("svg", { class: "chart", viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "none", role: "img" });
    values.forEach((v, i) => {
      const bh = (v / max) * (h - 4);
      if (bh <= 0) return;
      const r = svgEl("rect", { x: (i * w) / n + 1, y: h - bh, width: Math.max(1, w / n - 2), height: bh, fill: color });
      const t = svgEl("title", {});
      t.textContent = bytes(v);
      r.append(t);
      svg.append(r);
    });
    return svg;
  }
  // Stacked bars: series = [{name, series: [..]}]
  function stackedChart(series) {
    const w = 600, h = 120, n = series.length ? series[0].series.length : 60;
    const totals = new Array(n).fill(0);
    for (const s of series) s.series.forEach((v, i) => { totals[i] += v; });
    const max = Math.max(1, ...totals);
    const svg = svgEl("svg", { class: "chart", viewBox: "0 0 " + w + " " + h, preserveAspectRatio: "none", role: "img" });
    svg.style.height = "120px";
    const base = new Array(n).fill(0);
    series.forEach((s, k) => {
      s.series.forEach((v, i) => {
        if (!v) return;
        const bh = (v / max) * (h - 4);
        base[i] += bh;
        svg.append(svgEl("rect", { x: (i * w) / n + 1, y: h - base[i], width: Math.max(1, w / n - 2), height: bh, fill: COLORS[k % COLORS.length] }));
      });
    });
    return svg;
  }

  async function loadAssets() {
    const d = await api("/api/assets");
    const box = document.getElementById("assets");
    clear(box);
    document.getElementById("assets-hour").textContent = d.last_bucket
      ? "the hour up to " + new Date((d.last_bucket + 1) * 60000).toISOString().slice(0, 16).replace("T", " ") + " UTC (packet time)"
      : "";
    if (!d.assets.length) box.append(el("p", { class: "empty" }, "No egress traffic in the last hour of records."));
    const roles = document.getElementById("roles");
    clear(roles);
    d.roles.forEach((r, i) => {
      if (i) roles.append(document.createTextNode(" \u00b7 "));
      const s = el("span", { class: "role-total" });
      s.dataset.role = r.role;
      s.append(el("b", null, r.role), document.createTextNode(" " + bytes(r.bytes)));
      roles.append(s);
    });
    for (const a of d.assets) {
      const card = el("div", { class: "card" });
      card.dataset.asset = a.asset;
      card.append(el("h3", null, a.asset));
      const meta = el("div", { class: "meta" });
      meta.append(el("span", { class: "role" }, a.role ? "role " + a.role : "no role"), document.createTextNode(" \u00b7 "),
        el("span", { class: "bytes" }, bytes(a.bytes) + " out"), document.createTextNode(" \u00b7 "),
        el("span", { class: "uniq" }, a.unique_destinations + " unique destinations"));
      card.append(meta, barChart(a.series, COLORS[0]));
      const ol = el("ol", { class: "top" });
      for (const t of a.top) {
        const li = el("li");
        li.append(el("span", { class: "dest" }, t.dest), document.createTextNode(" " + bytes(t.bytes)));
        ol.append(li);
      }
      card.append(ol);
      box.append(card);
    }
  }

  async function loadProtocols() {
    const d = await api("/api/protocols");
    const box = document.getElementById("protocols");
    clear(box);
    const top = d.protocols.slice(0, COLORS.length - 1);
    const rest = d.protocols.slice(COLORS.length - 1);
    if (rest.length) {
      const other = { name: "other", bytes: 0, series: new Array(60).fill(0) };
      for (const p of rest) { other.bytes += p.bytes; p.series.forEach((v, i) => { other.series[i] += v; }); }
      top.push(other);
    }
    box.append(stackedChart(top));
    const legend = el("div", { class: "legend" });
    top.forEach((p, k) => {
      const s = el("span");
      const swatch = el("i");
      swatch.style.background = COLORS[k % COLORS.length];
      s.append(swatch, document.createTextNode(p.name + " " + bytes(p.bytes)));
      legend.append(s);
    });
    box.append(legend);
  }

  async function loadCountries() {
    const d = await api("/api/countries");
    const box = document.getElementById("countries");
    clear(box);
    const max = Math.max(1, ...d.countries.map((c) => c.bytes));
    for (const c of d.countries.slice(0, 15)) {
      const row = el("div", { class: "bar-row" });
      const bar = el("div", { class: "bar" });
      bar.style.width = ((c.bytes / max) * 100).toFixed(1) + "%";
      const wrap = el("div");
      wrap.append(bar);
      row.append(el("span", { class: "name" }, c.name), wrap, el("span", null, bytes(c.bytes)));
      box.append(row);
    }
    if (!d.countries.length) box.append(el("p", { class: "empty" }, "No destinations with a known country."));
  }

  async function loadSensors() {
    const d = await api("/api/sensors");
    const tbody = document.querySelector("#sensors tbody");
    clear(tbody);
    for (const s of d.sensors) {
      const tr = el("tr", { class: s.stale ? "stale" : "" });
      tr.dataset.sensor = s.id;
      tr.append(td(s.id, "id"), td(s.version), td(Number(s.packets_per_s || 0).toFixed(1)), td(s.packets, "packets"),
        td(s.drops, "drops"), td((s.queue_depth || "0") + " / " + (s.spooled || "0")),
        td(s.present ? shortTime(s.updated) + (s.age_s >= 0 ? " (" + s.age_s + " s ago)" : "") : "heartbeat expired"),
        td(s.stale ? "stale" : "ok", "state"));
      tbody.append(tr);
    }
  }

  async function refresh() {
    for (const f of [loadAssets, loadProtocols, loadCountries, loadSensors]) {
      try { await f(); } catch (e) { /* shown by the banner */ }
    }
  }

  function events() {
    const es = new EventSource("/api/events" + (token ? "?token=" + encodeURIComponent(token) : ""));
    es.addEventListener("alert", (ev) => {
      try { addAlert(JSON.parse(ev.data), true); } catch (e) { /* ignore a bad line */ }
    });
    es.addEventListener("redis", (ev) => {
      try {
        const up = JSON.parse(ev.data).up;
        setRedis(up);
        if (up) { loadAlerts().catch(() => {}); refresh(); }
      } catch (e) { /* ignore */ }
    });
    es.onerror = () => {
      const s = document.getElementById("status");
      if (s && redisUp !== false) { s.textContent = "reconnecting"; s.className = "status"; }
    };
  }

  async function start() {
    try { await loadAlerts(); } catch (e) { /* banner */ }
    await refresh();
    events();
    setInterval(() => {
      refresh();
      if (redisUp === false) loadAlerts().catch(() => {});
    }, REFRESH_MS);
  }
  document.readyState === "loading" ? document.addEventListener("DOMContentLoaded", start) : start();
})();
