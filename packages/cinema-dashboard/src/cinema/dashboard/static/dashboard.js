// The Cinema dashboard's page: renders each picture the server pushes (server-sent events)
// as tables and SVG charts. Plain DOM and SVG, no build step, no library.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3b6fd4", "#2e9e5b", "#d0413a", "#e0a100", "#8e44ad", "#16a2b8", "#6c757d", "#c2185b"];
const STATUS_COLOR = { Up: "#2e9e5b", Suspect: "#e0a100", Down: "#d0413a", Left: "#8a8f98" };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  return node;
}

function fill(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function bytes(n) {
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MB";
  if (n >= 1 << 10) return (n / (1 << 10)).toFixed(1) + " kB";
  return n + " B";
}

function renderMembers(state) {
  const byId = {};
  for (const node of state.nodes) if (node.reachable) byId[node.id] = node;
  const rows = state.members.map((m) => {
    const node = byId[m.id];
    const actors = node ? Object.values(node.actors).reduce((a, b) => a + b, 0) : "–";
    const stats = node ? node.stats : null;
    const seenBy = Object.entries(m.views).map(([who, s]) => `${who}: ${s}`).join(", ");
    return el("tr", { "data-member": m.id, "data-status": m.status },
      el("td", {}, m.id),
      el("td", {}, m.addr),
      el("td", {}, el("span", { class: `status ${m.status}`, "data-status-of": m.id }, m.status)),
      el("td", { class: "muted" }, seenBy || (m.reachable ? "itself" : "nobody")),
      el("td", {}, actors),
      el("td", {}, stats ? stats.registry_size : "–"),
      el("td", {}, stats ? `${bytes(stats.gossip_bytes_in)} / ${bytes(stats.gossip_bytes_out)}` : "unreachable"));
  });
  fill(document.querySelector("#members tbody"), rows);
  const counts = {};
  for (const m of state.members) counts[m.status] = (counts[m.status] || 0) + 1;
  document.getElementById("summary").textContent =
    Object.entries(counts).map(([s, n]) => `${n} ${s}`).join(" · ") + ` · poll #${state.poll}`;
}

function renderTimeline(state) {
  const chart = document.getElementById("timeline");
  const samples = state.samples;
  const ids = state.members.map((m) => m.id);
  const width = 800, height = 120, label = 70;
  const row = Math.min(28, (height - 4) / Math.max(1, ids.length));
  const parts = [];
  const step = (width - label) / Math.max(samples.length, 1);
  ids.forEach((id, i) => {
    const y = 2 + i * row;
    const text = svg("text", { x: 4, y: y + row * 0.7, "font-size": 12, fill: "#1e2329" });
    text.textContent = id;
    parts.push(text);
    samples.forEach((sample, j) => {
      const status = sample.status[id];
      if (!status) return;
      parts.push(svg("rect", {
        x: label + j * step, y: y + 2, width: Math.max(step, 1) + 0.5, height: row - 4,
        fill: STATUS_COLOR[status] || "#b9bec7",
      }));
    });
  });
  chart.replaceChildren(...parts);
}

function renderLines(chartId, legendId, samples, key) {
  const chart = document.getElementById(chartId);
  const names = new Set();
  for (const s of samples) for (const name of Object.keys(s[key] || {})) names.add(name);
  const series = [...names].sort();
  const width = 400, height = 160, pad = 24;
  let top = 1;
  for (const s of samples) for (const v of Object.values(s[key] || {})) top = Math.max(top, v);
  const n = Math.max(samples.length, 2);
  const x = (j) => pad + (j * (width - pad - 4)) / (n - 1);
  const y = (v) => height - 14 - (v / top) * (height - 24);
  const parts = [
    svg("line", { x1: pad, y1: y(0), x2: width - 4, y2: y(0), stroke: "#d5d9df" }),
  ];
  const axis = svg("text", { x: 2, y: 12, "font-size": 10, fill: "#68707c" });
  axis.textContent = top >= 100 ? Math.round(top) : top.toFixed(1);
  parts.push(axis);
  const legend = [];
  series.forEach((name, i) => {
    const color = COLORS[i % COLORS.length];
    const points = [];
    samples.forEach((s, j) => {
      const v = (s[key] || {})[name];
      if (v !== undefined) points.push(`${x(j).toFixed(1)},${y(v).toFixed(1)}`);
    });
    parts.push(svg("polyline", { points: points.join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
    const last = samples.length ? (samples[samples.length - 1][key] || {})[name] : undefined;
    legend.push(el("span", { class: "key", "data-series": name },
      el("span", { class: "swatch", style: `background:${color}` }),
      `${name} ${last === undefined ? "" : (key === "rate" ? last.toFixed(1) + "/s" : last)}`));
  });
  chart.replaceChildren(...parts);
  document.getElementById(legendId).replaceChildren(...legend);
}

function renderPlacement(state) {
  const nodes = state.nodes.filter((n) => n.reachable);
  const types = new Set();
  for (const node of nodes) for (const t of Object.keys(node.actors)) types.add(t);
  const table = document.getElementById("placement");
  table.tHead.replaceChildren(el("tr", {}, el("th", {}, "actor type"), ...nodes.map((n) => el("th", {}, n.id))));
  fill(table.tBodies[0], [...types].sort().map((t) =>
    el("tr", { "data-type": t }, el("td", {}, t), ...nodes.map((n) => el("td", {}, n.actors[t] || 0)))));
}

function renderRegistry(state) {
  const entries = {};
  for (const node of state.nodes) if (node.reachable) Object.assign(entries, node.registry);
  fill(document.querySelector("#registry tbody"), Object.keys(entries).sort().map((name) =>
    el("tr", {}, el("td", {}, name), el("td", {}, entries[name].node), el("td", {}, entries[name].type))));
}

function renderFailures(state) {
  const list = document.getElementById("failures");
  if (!state.failures.length) {
    list.replaceChildren(el("li", { class: "muted" }, "none so far"));
    return;
  }
  list.replaceChildren(...state.failures.map((f) => el("li", {},
    el("strong", {}, `${f.actor} on ${f.node}`), ` — ${f.error} — supervision: ${f.decision} — `,
    el("span", { class: "muted" }, new Date(f.at * 1000).toLocaleTimeString()),
    el("details", {}, el("summary", {}, "traceback"), el("pre", {}, f.traceback)))));
}

function render(state) {
  renderMembers(state);
  renderTimeline(state);
  renderPlacement(state);
  renderRegistry(state);
  renderLines("rates", "rates-legend", state.samples, "rate");
  renderLines("mailboxes", "mailboxes-legend", state.samples, "mailbox");
  renderFailures(state);
}

function connect() {
  const badge = document.getElementById("connection");
  const source = new EventSource("events");
  source.onopen = () => { badge.dataset.state = "live"; badge.textContent = "live"; };
  source.onerror = () => { badge.dataset.state = "lost"; badge.textContent = "reconnecting…"; };
  source.onmessage = (event) => {
    const state = JSON.parse(event.data);
    if (state.members) render(state);
  };
}

connect();
