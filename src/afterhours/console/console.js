// The moderation console: the admin API read and acted on, the queue kept live by the
// `admin:*` events of the admins room. Every piece of user text goes in through textContent,
// never as markup: a chat transcript is written by the people being reported.
"use strict";

const TOKEN_KEY = "afterhours.adminToken"; // sessionStorage: this tab only
const $ = (id) => document.getElementById(id);
const state = {
  token: null,
  status: "open",
  category: "",
  reports: [],
  cursor: null,
  selected: -1,
  open: null, // the report shown in the detail pane
  socket: null,
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

function short(id) {
  return id ? id.slice(0, 8) : "(deleted)";
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
  }
}

async function api(method, path, body) {
  const options = { method, headers: { Authorization: `Bearer ${state.token}` } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

function say(text, isError = false) {
  const result = $("result");
  result.textContent = text;
  result.classList.toggle("error", isError);
}

// --- signing in ------------------------------------------------------------------------------

async function signIn(token) {
  state.token = token.trim();
  try {
    await api("GET", "/api/admin/reports?limit=1");
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    const why =
      error.code === "FORBIDDEN"
        ? "This token is not an admin's (FORBIDDEN)."
        : error.code === "UNAUTHORIZED"
          ? "This token is not valid, or has expired (UNAUTHORIZED)."
          : `Sign-in failed: ${error.message}`;
    $("sign-in-error").textContent = why;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  connect();
  await loadQueue();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.socket) state.socket.disconnect();
  location.reload();
}

// --- live ------------------------------------------------------------------------------------

function connect() {
  const live = $("live");
  live.hidden = false;
  live.textContent = "connecting…";
  const socket = io({ auth: { token: state.token }, transports: ["websocket", "polling"] });
  state.socket = socket;
  socket.on("connect", () => {
    live.textContent = "live";
    live.classList.add("on");
    loadQueue(); // what was filed while away
  });
  socket.on("disconnect", () => {
    live.textContent = "offline: reconnecting…";
    live.classList.remove("on");
  });
  socket.on("connect_error", (error) => {
    live.textContent = `offline: ${(error.data && error.data.code) || error.message}`;
    live.classList.remove("on");
  });
  socket.on("admin:report_filed", ({ report }) => {
    bumpCount(report.status, +1);
    // The queue is oldest first: a new report goes last, once the last page is loaded.
    if (report.status === state.status && fits(report) && !state.cursor) {
      state.reports.push(report);
      renderQueue();
    }
    say(`New report: ${report.category}`);
  });
  socket.on("admin:report_updated", ({ report }) => {
    const index = state.reports.findIndex((r) => r.id === report.id);
    if (index >= 0 && report.status !== state.status) {
      state.reports.splice(index, 1);
      if (state.selected >= state.reports.length) state.selected = state.reports.length - 1;
    } else if (index >= 0) {
      state.reports[index] = report;
    }
    renderQueue();
    refreshCounts();
    if (state.open && state.open.id === report.id) openReport(report.id, { focus: false });
  });
}

function fits(report) {
  return !state.category || report.category === state.category;
}

function bumpCount(status, by) {
  const badge = document.querySelector(`[data-count="${status}"]`);
  if (badge) badge.textContent = String(Number(badge.textContent) + by);
}

// --- the queue -------------------------------------------------------------------------------

function showCounts(counts) {
  for (const [status, n] of Object.entries(counts)) {
    const badge = document.querySelector(`[data-count="${status}"]`);
    if (badge) badge.textContent = String(n);
  }
}

async function refreshCounts() {
  try {
    showCounts((await api("GET", "/api/admin/reports?limit=1")).counts);
  } catch (error) {
    say(error.message, true);
  }
}

function queuePath(cursor) {
  const query = new URLSearchParams({ status: state.status });
  if (state.category) query.set("category", state.category);
  if (cursor) query.set("cursor", cursor);
  return `/api/admin/reports?${query}`;
}

async function loadQueue() {
  try {
    const page = await api("GET", queuePath(null));
    state.reports = page.reports;
    state.cursor = page.nextCursor;
    state.selected = Math.min(Math.max(state.selected, 0), state.reports.length - 1);
    showCounts(page.counts);
    renderQueue();
  } catch (error) {
    say(error.message, true);
  }
}

async function loadMore() {
  const page = await api("GET", queuePath(state.cursor));
  state.reports.push(...page.reports);
  state.cursor = page.nextCursor;
  renderQueue();
}

function renderQueue() {
  const list = $("queue");
  list.replaceChildren(
    ...state.reports.map((report, index) =>
      el(
        "li",
        {},
        el(
          "button",
          {
            type: "button",
            class: index === state.selected ? "report selected" : "report",
            "aria-current": index === state.selected ? "true" : null,
            "data-report-id": report.id,
            "aria-label": `Report ${short(report.id)}, ${report.category}, filed ${when(report.createdAt)}`,
            onclick: () => {
              state.selected = index;
              renderQueue();
              openReport(report.id);
            },
          },
          el("span", { class: "category", text: report.category }),
          el("span", { class: "meta", text: `about ${short(report.reportedUserId)} · ${when(report.createdAt)}` }),
          report.assignedTo ? el("span", { class: "assigned", text: `assigned ${short(report.assignedTo)}` }) : null,
        ),
      ),
    ),
  );
  if (!state.reports.length) list.append(el("li", { class: "empty", text: "Nothing here." }));
  $("more").hidden = !state.cursor;
}

function move(by) {
  if (!state.reports.length) return;
  state.selected = Math.max(0, Math.min(state.reports.length - 1, state.selected + by));
  renderQueue();
  const current = document.querySelector("#queue .selected");
  if (current) current.focus();
}

// --- one report ------------------------------------------------------------------------------

async function openReport(id, { focus = true } = {}) {
  let detail;
  try {
    detail = await api("GET", `/api/admin/reports/${encodeURIComponent(id)}`);
  } catch (error) {
    say(error.status === 404 ? `No report ${id}` : error.message, true);
    return false;
  }
  const report = detail.report;
  state.open = report;
  const people = await Promise.all(
    [report.reportedUserId, report.reporterId].map((userId) =>
      userId ? api("GET", `/api/admin/users/${userId}`).then((r) => r.user, () => null) : null,
    ),
  );
  $("detail-title").textContent = `Report ${short(report.id)} · ${report.category} · ${report.status}`;
  $("detail-body").replaceChildren(
    summary(report, detail),
    actions(report, people[0]),
    transcript(detail.messages),
    el("h3", { text: "Moderation log of this report" }),
    log(detail.history),
    record("Reported user", report.reportedUserId, people[0]),
    record("Reporter", report.reporterId, people[1]),
  );
  if (focus) $("detail").focus();
  return true;
}

function summary(report, detail) {
  return el(
    "dl",
    { class: "summary" },
    el("dt", { text: "Filed" }),
    el("dd", { text: when(report.createdAt) }),
    el("dt", { text: "Details" }),
    el("dd", { text: report.details || "—" }),
    el("dt", { text: "Reported user" }),
    el("dd", { text: report.reportedUserId }),
    el("dt", { text: "Reporter" }),
    el("dd", { text: report.reporterId || "(account deleted)" }),
    el("dt", { text: "Assigned to" }),
    el("dd", { text: report.assignedTo || "nobody" }),
    el("dt", { text: "Reports against this user" }),
    el("dd", { text: String(detail.reportsAgainstUser) }),
    report.resolution ? el("dt", { text: "Resolution" }) : null,
    report.resolution ? el("dd", { text: `${report.resolution} · ${when(report.resolvedAt)}` }) : null,
  );
}

function actions(report, reported) {
  const open = report.status !== "resolved";
  const bar = el("div", { class: "actions", role: "group", "aria-label": "Actions on this report" });
  const add = (label, key, handler, enabled = true) =>
    bar.append(el("button", { type: "button", "data-action": key, disabled: !enabled, onclick: handler, text: label }));
  add("Assign to me", "assign", () => act(report, "assign"), open);
  add("Escalate…", "escalate", () => act(report, "escalate"), open && report.status !== "escalated");
  add("Dismiss…", "dismiss", () => act(report, "dismiss"), open);
  add("Ban…", "ban", () => act(report, "ban"), open);
  add("Unban…", "unban", () => act(report, "unban"), Boolean(reported && reported.ban));
  return bar;
}

const ACTIONS = {
  assign: { title: "Assign this report to you?", note: null, call: (r) => ["POST", `/api/admin/reports/${r.id}/assign`] },
  escalate: {
    title: "Escalate this report?",
    note: "Note for senior moderators (required)",
    required: true,
    call: (r, note) => ["POST", `/api/admin/reports/${r.id}/escalate`, { note }],
  },
  dismiss: {
    title: "Dismiss this report?",
    note: "Note (optional)",
    call: (r, note) => ["POST", `/api/admin/reports/${r.id}/resolve`, { action: "dismiss", note: note || null }],
  },
  ban: {
    title: "Ban the reported user?",
    text: "Their session and match end, their sockets are disconnected and every device seen for them is banned.",
    note: "Reason (optional)",
    call: (r, note) => ["POST", `/api/admin/reports/${r.id}/resolve`, { action: "ban", note: note || null }],
  },
  unban: {
    title: "Lift the ban on the reported user?",
    text: "Their device bans are lifted with it.",
    note: null,
    call: (r) => ["DELETE", `/api/admin/users/${r.reportedUserId}/ban`],
  },
};

function confirmAction(action) {
  const dialog = $("confirm");
  $("confirm-title").textContent = action.title;
  $("confirm-text").textContent = action.text || "";
  const note = $("confirm-note");
  note.value = "";
  note.required = Boolean(action.required);
  note.hidden = $("confirm-note-label").hidden = !action.note;
  $("confirm-note-label").textContent = action.note || "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok" ? note.value.trim() : null), {
      once: true,
    });
    dialog.showModal();
    (action.note ? note : $("confirm-ok")).focus();
  });
}

async function act(report, key) {
  const action = ACTIONS[key];
  const note = await confirmAction(action);
  if (note === null) return say("Cancelled.");
  const [method, path, body] = action.call(report, note);
  try {
    const data = await api(method, path, body);
    say(`Done: ${key}${data.report ? ` (report ${data.report.status})` : ""}.`);
  } catch (error) {
    say(`${key} failed: ${error.message}${error.code ? ` (${error.code})` : ""}`, true);
  }
  await loadQueue();
  await openReport(report.id, { focus: false });
}

function transcript(messages) {
  const section = el("section", { class: "transcript", "aria-label": "Chat transcript" }, el("h3", { text: "Transcript" }));
  if (!messages.length) section.append(el("p", { text: "No retained messages (the report names no match, or none were sent)." }));
  const list = el("ol", {});
  for (const message of messages) {
    list.append(
      el(
        "li",
        { class: message.reported ? "message reported" : "message", "aria-label": message.reported ? "Reported message" : null },
        el("span", { class: "sender", text: short(message.senderId) }),
        el("time", { datetime: message.createdAt, text: when(message.createdAt) }),
        el("p", { class: "content", text: message.content }),
        message.reported ? el("strong", { class: "flag", text: "reported" }) : null,
      ),
    );
  }
  section.append(list);
  return section;
}

function log(history) {
  if (!history.length) return el("p", { text: "No actions yet." });
  return el(
    "ol",
    { class: "log" },
    ...history.map((a) =>
      el("li", { text: `${when(a.createdAt)} · ${a.action} by ${short(a.actorId)}${a.note ? ` — ${a.note}` : ""}` }),
    ),
  );
}

function record(title, userId, user) {
  const section = el("section", { class: "record", "aria-label": `${title}'s record` }, el("h3", { text: `${title} ${short(userId)}` }));
  if (!user) return section.append(el("p", { text: "No record (account deleted)." })), section;
  section.append(
    el(
      "dl",
      {},
      el("dt", { text: "Ban" }),
      el("dd", { text: user.ban ? `banned ${when(user.ban.bannedAt)}${user.ban.reason ? ` — ${user.ban.reason}` : ""} (${user.ban.devicesBanned} devices)` : "not banned" }),
      el("dt", { text: "Reports filed" }),
      el("dd", { text: String(user.reportsFiled.length) }),
      el("dt", { text: "Reports received" }),
      el("dd", { text: String(user.reportsReceived.length) }),
      el("dt", { text: "Messages rejected" }),
      el("dd", { text: String(user.messagesRejected) }),
    ),
    el("h4", { text: "Moderation log about them" }),
    log(user.history),
  );
  return section;
}

async function search(id) {
  id = id.trim();
  if (!id) return;
  if (await openReport(id)) return;
  try {
    const { user } = await api("GET", `/api/admin/users/${encodeURIComponent(id)}`);
    state.open = null;
    $("detail-title").textContent = `User ${short(user.id)}`;
    $("detail-body").replaceChildren(record("Record of user", user.id, user));
    say("");
  } catch (error) {
    say(`Nothing found for ${id}`, true);
  }
}

// --- wiring ----------------------------------------------------------------------------------

function start() {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token").value);
  });
  $("sign-out").addEventListener("click", signOut);
  $("more").addEventListener("click", loadMore);
  $("category").addEventListener("change", (event) => {
    state.category = event.target.value;
    state.selected = 0;
    loadQueue();
  });
  for (const tab of document.querySelectorAll("#tabs [role=tab]")) {
    tab.addEventListener("click", () => {
      for (const other of document.querySelectorAll("#tabs [role=tab]")) other.setAttribute("aria-selected", String(other === tab));
      state.status = tab.dataset.status;
      state.selected = 0;
      loadQueue();
    });
  }
  $("search").addEventListener("submit", (event) => {
    event.preventDefault();
    search($("search-id").value);
  });
  document.addEventListener("keydown", (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName) || $("confirm").open;
    if (typing || $("console").hidden || event.ctrlKey || event.metaKey || event.altKey) return;
    const current = state.reports[state.selected];
    const keys = {
      j: () => move(+1),
      k: () => move(-1),
      Enter: () => current && openReport(current.id),
      "/": () => $("search-id").focus(),
      a: () => state.open && act(state.open, "assign"),
      e: () => state.open && act(state.open, "escalate"),
      d: () => state.open && act(state.open, "dismiss"),
      b: () => state.open && act(state.open, "ban"),
    };
    if (keys[event.key]) {
      event.preventDefault();
      keys[event.key]();
    }
  });

  // A sign-in link carries the token in the fragment (never sent to the server, so never in a
  // log); it is moved to this tab's storage and taken off the address bar.
  const fromLink = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromLink) history.replaceState(null, "", location.pathname + location.search);
  const token = fromLink || sessionStorage.getItem(TOKEN_KEY);
  if (token) signIn(token);
}

start();
