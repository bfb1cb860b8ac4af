// The operations page: reads /metrics every 5 s with an admin token and draws a sparkline per
// metric of interest. No library, no build step: this file is served as it is.
"use strict";

(function () {
  const POLL_MS = 5000;
  const POINTS = 72; // six minutes of history at one point per poll
  const TOKEN_KEY = "afterhours.adminToken";
  const METRICS_URL = "../metrics"; // the page is /admin/ops: this is /metrics

  // --- the Prometheus text format ---------------------------------------------------------

  function unescapeLabel(value) {
    return value.replace(/\\(["\\n])/g, (_, c) => (c === "n" ? "\n" : c));
  }

  // Samples of a text-format exposition: [{name, labels: {..}, value}].
  function parse(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$/;
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (const raw of text.split("\n")) {
      const row = raw.trim();
      if (!row || row.startsWith("#")) continue;
      const m = line.exec(row);
      if (!m) continue;
      const labels = {};
      if (m[2]) {
        for (const l of m[2].matchAll(label)) labels[l[1]] = unescapeLabel(l[2]);
      }
      samples.push({ name: m[1], labels, value: parseFloat(m[3]) });
    }
    return samples;
  }

  function named(samples, name, where) {
    return samples.filter(
      (s) => s.name === name && (!where || Object.entries(where).every(([k, v]) => s.labels[k] === v))
    );
  }
  const sum = (list) => list.reduce((total, s) => total + s.value, 0);
  const max = (list) => list.reduce((top, s) => Math.max(top, s.value), 0);

  // Per second between two scrapes; a counter that went down was reset (a restart).
  function rate(now, before, seconds) {
    if (before === undefined || seconds <= 0) return null;
    return (now >= before ? now - before : now) / seconds;
  }

  // histogram_quantile over the buckets' increase between two scrapes, all series summed.
  function quantile(q, samples, previous, name) {
    const increase = new Map();
    const was = new Map();
    for (const s of named(previous || [], name + "_bucket")) {
      const key = JSON.stringify(s.labels);
      was.set(key, s.value);
    }
    for (const s of named(samples, name + "_bucket")) {
      const before = was.get(JSON.stringify(s.labels));
      if (before === undefined) continue;
      const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
      const delta = s.value >= before ? s.value - before : s.value;
      increase.set(le, (increase.get(le) || 0) + delta);
    }
    const bounds = [...increase.keys()].sort((a, b) => a - b);
    if (!bounds.length) return null;
    const total = increase.get(bounds[bounds.length - 1]);
    if (!total) return null;
    const rank = q * total;
    let lower = 0;
    let below = 0;
    for (const bound of bounds) {
      const count = increase.get(bound);
      if (count >= rank) {
        if (bound === Infinity) return lower; // the highest finite bound, as Prometheus does
        return lower + ((bound - lower) * (rank - below)) / Math.max(count - below, 1e-9);
      }
      lower = bound;
      below = count;
    }
    return lower;
  }

  // --- what is drawn ----------------------------------------------------------------------

  // Each chart: a title, how to read its value from a scrape (and the one before), a unit.
  const CHARTS = [
    { id: "sessions", title: "Active sessions", read: (s) => sum(named(s, "afterhours_sessions_active")) },
    { id: "waiting", title: "Waiting users", read: (s) => sum(named(s, "afterhours_users_waiting")) },
    {
      id: "matches",
      title: "Open matches",
      read: (s) => sum(named(s, "afterhours_matches_open")),
      detail: (s) =>
        named(s, "afterhours_matches_open").map((m) => `${m.labels.status} ${m.value}`).join(" · "),
    },
    {
      id: "stored",
      title: "Messages stored",
      unit: "/s",
      counter: "afterhours_messages_stored_total",
    },
    {
      id: "rejected",
      title: "Messages rejected",
      unit: "/s",
      counter: "afterhours_messages_rejected_total",
    },
    { id: "sockets", title: "Sockets (this process)", read: (s) => sum(named(s, "afterhours_sockets_connected")) },
    { id: "depth", title: "Jobs due", read: (s) => sum(named(s, "afterhours_job_queue_depth")) },
    {
      id: "lag",
      title: "Queue lag",
      unit: "s",
      read: (s) => max(named(s, "afterhours_job_queue_lag_seconds")),
      alarm: (v) => v > 5,
    },
    {
      id: "workers",
      title: "Workers alive",
      read: (s) => sum(named(s, "afterhours_workers_alive")),
      alarm: (v) => v < 1,
    },
    {
      id: "p99",
      title: "HTTP p99",
      unit: "ms",
      read: (s, prev) => {
        const q = quantile(0.99, s, prev, "afterhours_http_request_duration_seconds");
        return q === null ? null : q * 1000;
      },
    },
    {
      id: "errors",
      title: "HTTP 5xx",
      unit: "/s",
      counter: (s) => sum(s.filter((x) => x.name === "afterhours_http_requests_total" && /^5/.test(x.labels.status || ""))),
      alarm: (v) => v > 0,
    },
  ];

  const series = new Map(CHARTS.map((c) => [c.id, []]));
  const cards = new Map();
  let previous = null;
  let previousAt = 0;
  let timer = null;
  let paused = false;

  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";

  function buildCards() {
    const root = $("charts");
    root.replaceChildren();
    for (const chart of CHARTS) {
      const card = document.createElement("article");
      card.className = "card";
      card.id = "chart-" + chart.id;
      const title = document.createElement("h2");
      title.textContent = chart.title;
      const value = document.createElement("p");
      value.className = "value";
      value.textContent = "–";
      const detail = document.createElement("p");
      detail.className = "detail";
      const svg = document.createElementNS(SVG, "svg");
      svg.setAttribute("viewBox", "0 0 100 40");
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("role", "img");
      const line = document.createElementNS(SVG, "polyline");
      svg.append(line);
      card.append(title, value, detail, svg);
      root.append(card);
      cards.set(chart.id, { card, value, detail, svg, line });
    }
  }

  function counterValue(chart, samples) {
    return typeof chart.counter === "function" ? chart.counter(samples) : sum(named(samples, chart.counter));
  }

  function format(v) {
    if (v === null || Number.isNaN(v)) return "–";
    if (Math.abs(v) >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
  }

  function draw(chart, points) {
    const { card, value, svg, line } = cards.get(chart.id);
    const current = points.length ? points[points.length - 1] : null;
    const shown = format(current) + (current === null ? "" : chart.unit ? " " + chart.unit : "");
    value.textContent = shown;
    card.classList.toggle("alarm", current !== null && !!chart.alarm && chart.alarm(current));
    const known = points.filter((p) => p !== null);
    const top = Math.max(...known, 1);
    const bottom = Math.min(...known, 0);
    const step = 100 / (POINTS - 1);
    const offset = POINTS - points.length;
    const coords = [];
    points.forEach((p, i) => {
      if (p === null) return;
      const y = 38 - ((p - bottom) / (top - bottom || 1)) * 36;
      coords.push(`${((offset + i) * step).toFixed(1)},${y.toFixed(1)}`);
    });
    line.setAttribute("points", coords.join(" "));
    svg.setAttribute(
      "aria-label",
      `${chart.title}: ${shown}; over the last ${known.length} readings between ${format(bottom)} and ${format(top)}`
    );
  }

  function render(samples, at) {
    const seconds = previous ? (at - previousAt) / 1000 : 0;
    for (const chart of CHARTS) {
      let v;
      if (chart.counter) {
        v = previous ? rate(counterValue(chart, samples), counterValue(chart, previous), seconds) : null;
      } else {
        v = chart.read(samples, previous);
      }
      const points = series.get(chart.id);
      points.push(v === undefined ? null : v);
      if (points.length > POINTS) points.shift();
      draw(chart, points);
      if (chart.detail) cards.get(chart.id).detail.textContent = chart.detail(samples);
    }
    renderQueue(samples);
    previous = samples;
    previousAt = at;
  }

  function renderQueue(samples) {
    const rows = new Map();
    const column = { afterhours_job_queue_depth: 0, afterhours_job_queue_lag_seconds: 1, afterhours_jobs_running: 2, afterhours_job_queue_scheduled: 3 };
    for (const s of samples) {
      if (!(s.name in column) || !s.labels.task) continue;
      if (!rows.has(s.labels.task)) rows.set(s.labels.task, [0, 0, 0, 0]);
      rows.get(s.labels.task)[column[s.name]] = s.value;
    }
    const body = $("queue-rows");
    body.replaceChildren();
    for (const [task, values] of [...rows].sort()) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = task;
      tr.append(th);
      for (const v of values) {
        const td = document.createElement("td");
        td.textContent = format(v);
        tr.append(td);
      }
      body.append(tr);
    }
  }

  // --- the token and the polling ------------------------------------------------------------

  function status(text, isError) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function showSignedIn(signedIn) {
    $("login").hidden = signedIn;
    $("controls").hidden = !signedIn;
    $("charts").hidden = !signedIn;
    $("queue").hidden = !signedIn;
  }

  function stop() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }

  async function poll() {
    stop();
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) return;
    try {
      const response = await fetch(METRICS_URL, {
        headers: { Authorization: "Bearer " + token },
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        sessionStorage.removeItem(TOKEN_KEY);
        showSignedIn(false);
        status(`The token was refused (${response.status}): sign in with an admin token`, true);
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(parse(await response.text()), Date.now());
      status("Live");
      $("updated").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      status("Cannot read /metrics: " + error.message + " (trying again)", true);
    }
    if (!paused) timer = setTimeout(poll, POLL_MS);
  }

  function start(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    previous = null;
    for (const points of series.values()) points.length = 0;
    showSignedIn(true);
    status("Connecting…");
    poll();
  }

  // A link may carry the token as #token=...: taken, then removed from the address bar (and so
  // from the history) before anything else happens.
  function tokenFromAddress() {
    const params = new URLSearchParams(location.hash.slice(1));
    const token = params.get("token");
    if (token === null) return null;
    window.history.replaceState(null, "", location.pathname + location.search);
    return token.trim() || null;
  }

  function init() {
    buildCards();
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("token");
      const token = input.value.trim();
      input.value = "";
      if (token) start(token);
    });
    $("pause").addEventListener("click", () => {
      paused = !paused;
      $("pause").setAttribute("aria-pressed", String(paused));
      $("pause").textContent = paused ? "Resume" : "Pause";
      if (paused) {
        stop();
        status("Paused");
      } else {
        poll();
      }
    });
    $("forget").addEventListener("click", () => {
      stop();
      sessionStorage.removeItem(TOKEN_KEY);
      showSignedIn(false);
      status("Signed out");
    });
    const given = tokenFromAddress();
    const token = given || sessionStorage.getItem(TOKEN_KEY);
    if (token) start(token);
    else showSignedIn(false);
  }

  window.AfterHoursOps = { parse, quantile, rate }; // for tests of the page
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
