// The ProofPix dashboard: one script, no framework, no build step.
//
// Threat model: every string the API returns may come from an attacker. File
// names, metadata values, plugin error messages and audit details are written
// by whoever made the scanned file or runs the remote system. So nothing from
// the API is ever parsed as HTML: the `h()` helper below builds elements with
// DOM calls and turns every string child into a text node, and it refuses
// event-handler attributes. There is no `innerHTML` in this file. The server's
// Content-Security-Policy (script and style from this origin only, no inline
// script or style attributes) is the second layer, should a bug slip through.
//
// Layout: helpers (DOM, API, time) → session and routing → live updates
// (server-sent events) → one render function per view → setup/edit forms.
"use strict";

(() => {
  // ----- DOM helpers --------------------------------------------------------

  /// Creates an element. `props` sets attributes (`class`, `href`, `aria-*`,
  /// `data-*`...), `on` listeners and a few DOM properties; `children` are
  /// nodes or strings (always text). `null`/`false` children are skipped.
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "on") {
        for (const [event, fn] of Object.entries(value)) el.addEventListener(event, fn);
      } else if (key === "value" || key === "checked" || key === "selected" || key === "disabled") {
        el[key] = value;
      } else if (/^on/i.test(key) || key === "style") {
        throw new Error(`refusing to set ${key}: listeners go in 'on', styles in app.css`);
      } else {
        el.setAttribute(key, value === true ? "" : String(value));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.firstChild.remove();
    return el;
  }

  const $ = (sel, root = document) => root.querySelector(sel);

  /// Replaces `old` with `next`, keeping keyboard focus on the equivalent
  /// control (same `data-focus` key) so live updates never steal focus.
  function replaceKeepingFocus(old, next) {
    const active = document.activeElement;
    const key = active && old.contains(active) ? active.getAttribute("data-focus") : null;
    old.replaceWith(next);
    if (key) {
      const again = next.querySelector(`[data-focus="${CSS.escape(key)}"]`);
      if (again) again.focus();
    }
  }

  // ----- formatting ---------------------------------------------------------

  const RISKS = ["none", "low", "medium", "high", "critical"];
  const riskRank = (r) => Math.max(0, RISKS.indexOf(r));
  const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? String(iso) : dateFmt.format(d);
  }

  function relTime(iso) {
    if (!iso) return "";
    const secs = (new Date(iso).getTime() - Date.now()) / 1000;
    if (!Number.isFinite(secs)) return "";
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (Math.abs(secs) >= size) return relFmt.format(Math.round(secs / size), unit);
    }
    return relFmt.format(Math.round(secs), "second");
  }

  /// A `<time>` showing a relative time, with the exact one as its title.
  function timeEl(iso, empty = "—") {
    if (!iso) return h("span", { class: "muted" }, empty);
    return h("time", { datetime: iso, title: fmtTime(iso) }, relTime(iso) || fmtTime(iso));
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms < 1000) return `${ms} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  const fmtInt = (n) => (typeof n === "number" ? n.toLocaleString() : "—");
  const plural = (n, one, many = `${one}s`) => `${fmtInt(n)} ${n === 1 ? one : many}`;

  function riskBadge(risk) {
    const r = RISKS.includes(risk) ? risk : "none";
    return h("span", { class: `badge risk risk-${r}` }, r);
  }

  function riskChips(byRisk) {
    const entries = Object.entries(byRisk || {})
      .filter(([, n]) => n > 0)
      .sort(([a], [b]) => riskRank(b) - riskRank(a));
    if (entries.length === 0) return h("span", { class: "muted" }, "—");
    return h("span", { class: "chips" },
      entries.map(([r, n]) => h("span", { class: `badge risk risk-${RISKS.includes(r) ? r : "none"}` }, `${r} ${fmtInt(n)}`)));
  }

  // ----- API ----------------------------------------------------------------

  class ApiFailure extends Error {
    constructor(status, detail) {
      super(detail);
      this.status = status;
    }
  }

  /// Calls the API with the session cookie. Changes carry the header the
  /// daemon requires of cookie-authenticated requests (a cross-site form
  /// cannot send it). Problem documents become `ApiFailure` with their detail.
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["X-ProofPix-Request"] = "1";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
      });
    } catch (e) {
      throw new ApiFailure(0, "The daemon cannot be reached; check that it is running.");
    }
    if (resp.status === 401 && path !== "/api/session") {
      signedOut("Your session ended; sign in again.");
      throw new ApiFailure(401, "not signed in");
    }
    if (resp.status === 204) return null;
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail : `${resp.status} ${resp.statusText}`;
      throw new ApiFailure(resp.status, detail);
    }
    return data;
  }

  // ----- app state ----------------------------------------------------------

  const app = {
    session: null, // {name, role}
    plugins: null, // [PluginView]
    integrations: [], // [IntegrationView]
    stats: null,
    events: null, // EventSource
    liveFiles: new Map(), // integration id -> files seen in the current run
    view: null, // {name, refresh(event)}
    // Whether the next page render moves focus to its heading: yes after a
    // navigation or signing in, no on the first load (so the first Tab still
    // reaches the skip link).
    focusHeading: false,
    opener: null, // the button whose action runs now
    fileAction: null, // {integration, remoteId, result}: the outcome a file page shows once
  };

  const ROLE_RANK = { viewer: 0, operator: 1, admin: 2 };
  const can = (role) => app.session && ROLE_RANK[app.session.role] >= ROLE_RANK[role];

  const main = () => $("#main");

  function announce(message) {
    const el = $("#announcer");
    el.textContent = "";
    // A fresh text node after a tick makes screen readers read it again.
    setTimeout(() => { el.textContent = message; }, 50);
  }

  let toastTimer = null;
  function toast(message, kind = "info") {
    const el = $("#toast");
    el.textContent = message;
    el.className = `toast toast-${kind}`;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
  }

  function errorBox(err) {
    return h("div", { class: "alert alert-error", role: "alert" }, err instanceof Error ? err.message : String(err));
  }

  /// Runs an action from a button: marks it busy meanwhile (a second press does nothing),
  /// reports failure. The button is `aria-disabled`, not `disabled`: a disabled button drops
  /// keyboard focus to the page body, and "Sync now", "Pause" or "Resume" must keep it.
  async function act(button, fn) {
    if (isBusy(button)) return;
    app.opener = button;
    if (button) button.setAttribute("aria-disabled", "true");
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof ApiFailure && e.status === 401)) toast(e.message, "error");
    } finally {
      if (button && button.isConnected && !button.hasAttribute("data-stays-busy")) button.removeAttribute("aria-disabled");
    }
  }

  const isBusy = (button) => !!button && button.getAttribute("aria-disabled") === "true";

  // ----- theme --------------------------------------------------------------

  const THEME_KEY = "proofpix-theme";
  const systemDark = window.matchMedia("(prefers-color-scheme: dark)");

  function storedTheme() {
    try {
      return localStorage.getItem(THEME_KEY);
    } catch (e) {
      return null;
    }
  }

  function applyTheme() {
    const stored = storedTheme();
    const dark = stored ? stored === "dark" : systemDark.matches;
    const before = document.documentElement.getAttribute("data-theme");
    document.documentElement.setAttribute("data-theme", dark ? "dark" : "light");
    if (before && before !== (dark ? "dark" : "light") && app.view && app.view.onTheme) app.view.onTheme();
    const button = $("#theme-toggle");
    button.setAttribute("aria-pressed", dark ? "true" : "false");
    button.textContent = "Dark mode";
    button.title = stored ? "Dark mode (your choice; follows the system until you toggle)" : "Dark mode (following the system)";
  }

  function toggleTheme() {
    const dark = document.documentElement.getAttribute("data-theme") === "dark";
    try {
      localStorage.setItem(THEME_KEY, dark ? "light" : "dark");
    } catch (e) {
      // Private mode: the toggle still works for this page.
    }
    applyTheme();
  }

  // ----- dialog -------------------------------------------------------------

  let dialogOpener = null;
  let dialogResolve = null;

  /// Opens the modal dialog. Escape closes it (the browser's `cancel`), and
  /// focus returns to whatever opened it.
  function openDialog(title, body, actions = []) {
    const dialog = $("#dialog");
    // A disabled button (see `act`) may have lost focus; it is still the opener.
    const active = document.activeElement;
    dialogOpener = active && active !== document.body && !dialog.contains(active) ? active : app.opener;
    $("#dialog-title").textContent = title;
    const container = clear($("#dialog-body"));
    append(container, [body]);
    if (actions.length) append(container, [h("div", { class: "actions dialog-actions" }, actions)]);
    if (!dialog.open) dialog.showModal();
    const first = container.querySelector("[autofocus]") || $("#dialog-close");
    first.focus();
    return new Promise((resolve) => { dialogResolve = resolve; });
  }

  function closeDialog(result) {
    const dialog = $("#dialog");
    if (dialog.open) dialog.close();
    finishDialog(result);
  }

  function finishDialog(result) {
    if (dialogResolve) {
      const resolve = dialogResolve;
      dialogResolve = null;
      resolve(result);
    }
    // Focus returns after the opener's action has finished and enabled it again.
    const opener = dialogOpener;
    dialogOpener = null;
    if (opener) setTimeout(() => { if (opener.isConnected) opener.focus(); }, 0);
  }

  function confirmDialog(title, message, confirmLabel, danger = false) {
    return openDialog(title, h("p", {}, message), [
      h("button", { type: "button", class: "button", on: { click: () => closeDialog(false) } }, "Cancel"),
      h("button", {
        type: "button",
        class: danger ? "button danger" : "button primary",
        autofocus: true,
        on: { click: () => closeDialog(true) },
      }, confirmLabel),
    ]);
  }

  // ----- session ------------------------------------------------------------

  function signedIn(session) {
    app.session = session;
    $("#nav").hidden = false;
    const who = $("#whoami");
    who.hidden = false;
    clear(who);
    append(who, [h("span", { class: "visually-hidden" }, "Signed in as "), session.name, " ", h("span", { class: "badge role" }, session.role)]);
    $("#sign-out").hidden = false;
    startLive();
    render();
  }

  function signedOut(message) {
    app.session = null;
    app.plugins = null;
    stopLive();
    $("#nav").hidden = true;
    $("#whoami").hidden = true;
    $("#sign-out").hidden = true;
    $("#live-state").hidden = true;
    renderSignIn(message);
  }

  async function signOut() {
    try {
      await api("DELETE", "/api/session");
    } catch (e) {
      // Signed out locally either way.
    }
    location.hash = "#/";
    signedOut("You are signed out.");
  }

  function renderSignIn(message) {
    app.view = null;
    const error = h("div", { id: "sign-in-error" });
    const input = h("input", {
      id: "token",
      name: "token",
      type: "password",
      autocomplete: "current-password",
      required: true,
      spellcheck: "false",
      "aria-describedby": "token-help",
    });
    const form = h("form", { class: "card narrow", id: "sign-in" },
      h("h1", { tabindex: "-1" }, "Sign in to ProofPix"),
      message ? h("p", { class: "alert" }, message) : null,
      h("div", { class: "field" },
        h("label", { for: "token" }, "API token"),
        input,
        h("p", { class: "help", id: "token-help" },
          "The daemon prints a bootstrap admin token the first time it starts; an admin can create more under Settings.")),
      error,
      h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Sign in")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(error);
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const session = await api("POST", "/api/session", { token: input.value.trim() });
        input.value = "";
        app.focusHeading = true;
        signedIn(session);
      } catch (e) {
        append(error, [errorBox(e.status === 401 ? "That token is not valid (revoked or mistyped)." : e.message)]);
        input.focus();
      } finally {
        button.disabled = false;
      }
    });
    clear(main());
    append(main(), [form]);
    input.focus();
  }

  // ----- live updates -------------------------------------------------------

  // Refreshes are batched: a run can send hundreds of `file` events a second,
  // and the stats need not be fetched for each one.
  const FILE_REFRESH_DELAY_MS = 400;
  let pending = [];
  let flushTimer = null;

  function queueRefresh(event) {
    pending.push(event);
    if (flushTimer === null) flushTimer = setTimeout(flushRefresh, event.type === "file" ? FILE_REFRESH_DELAY_MS : 30);
  }

  function flushRefresh() {
    flushTimer = null;
    const events = pending;
    pending = [];
    const view = app.view;
    if (!view || !view.refresh || events.length === 0) return;
    const major = events.filter((e) => e.type !== "file");
    if (major.length === 0) {
      view.refresh(events[events.length - 1]);
      return;
    }
    const seen = new Set();
    for (const e of major.reverse()) {
      const key = e.integration || "*";
      if (!seen.has(key)) {
        seen.add(key);
        view.refresh(e);
      }
    }
  }

  function startLive() {
    stopLive();
    const state = $("#live-state");
    state.hidden = false;
    state.textContent = "Connecting…";
    state.className = "live-state";
    const source = new EventSource("/api/events");
    app.events = source;
    let opened = false;
    source.addEventListener("open", () => {
      state.textContent = "Live";
      state.className = "live-state live-on";
      // Events sent while the connection was down are not replayed: reload
      // the view's data after a reconnection.
      if (opened) queueRefresh({ type: "integrations-changed" });
      opened = true;
    });
    source.addEventListener("error", () => {
      state.textContent = "Reconnecting…";
      state.className = "live-state live-off";
    });
    source.addEventListener("message", (msg) => {
      let event;
      try {
        event = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      onLiveEvent(event);
    });
  }

  function stopLive() {
    if (app.events) app.events.close();
    app.events = null;
  }

  function onLiveEvent(event) {
    const id = event.integration;
    switch (event.type) {
      case "sync-started":
        app.liveFiles.set(id, 0);
        markSyncing(id, true);
        announce(`Sync of ${id} started.`);
        break;
      case "file":
        app.liveFiles.set(id, (app.liveFiles.get(id) || 0) + 1);
        updateLiveCount(id);
        break;
      case "sync-finished":
        app.liveFiles.delete(id);
        announce(event.outcome === "ok"
          ? `Sync of ${id} finished.`
          : `Sync of ${id} failed: ${event.error || "unknown error"}`);
        break;
      default:
        break;
    }
    queueRefresh(event);
  }

  function markSyncing(id, syncing) {
    const found = app.integrations.find((i) => i.id === id);
    if (!found) return;
    found.syncing = syncing;
    const card = document.querySelector(`[data-integration="${CSS.escape(id)}"]`);
    if (card) replaceKeepingFocus(card, integrationCard(found));
  }

  function updateLiveCount(id) {
    for (const el of document.querySelectorAll(`[data-live-count="${CSS.escape(id)}"]`)) {
      el.textContent = `${plural(app.liveFiles.get(id) || 0, "file")} analysed so far`;
    }
  }

  // ----- routing ------------------------------------------------------------

  const ROUTES = [
    [/^$/, () => renderOverview()],
    [/^integrations\/([^/]+)$/, (id) => renderIntegration(id)],
    [/^integrations\/([^/]+)\/edit$/, (id) => renderSetup({ editId: id })],
    [/^new$/, () => renderPluginPicker()],
    [/^new\/([^/]+)$/, (plugin) => renderSetup({ pluginId: plugin })],
    [/^batches$/, () => renderBatches()],
    [/^batches\/(\d+)$/, (id) => renderBatch(id)],
    [/^batches\/(\d+)\/files\/(\d+)$/, (batch, result) => renderResult(result, batch)],
    [/^results\/(\d+)$/, (result) => renderResult(result, null)],
    [/^files(?:\?.*)?$/, () => renderFiles()],
    [/^files\/([^/?]+)\/(.+)$/, (integration, remoteId) => renderFile(integration, remoteId)],
    [/^audit$/, () => renderAudit()],
    [/^settings$/, () => renderSettings()],
  ];

  function currentPath() {
    return decodeURIComponent(location.hash.replace(/^#\/?/, "")).replace(/\/$/, "");
  }

  /// Renders the view for the current hash; `focus` moves focus to the new
  /// heading (navigation), which a live refresh never does.
  function render() {
    // Only "#/..." addresses are views; "#main" is the skip link's target.
    if (!app.session || (location.hash && !location.hash.startsWith("#/"))) return;
    const path = currentPath();
    for (const link of document.querySelectorAll("[data-nav]")) {
      const name = link.getAttribute("data-nav");
      const active = name === "overview" ? path === "" || path.startsWith("integrations") || path.startsWith("new")
        : path.startsWith(name);
      if (active) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    for (const [pattern, view] of ROUTES) {
      const m = pattern.exec(path);
      if (m) {
        app.view = null;
        Promise.resolve(view(...m.slice(1))).catch((e) => {
          if (e instanceof ApiFailure && e.status === 401) return;
          showPage("Something went wrong", [errorBox(e)]);
        });
        return;
      }
    }
    showPage("Not found", [h("p", {}, "There is no such page. "), h("a", { href: "#/" }, "Back to the overview")]);
  }

  /// Replaces the main area with a page: a heading and its content.
  function showPage(title, content, { headingExtra = null } = {}) {
    const m = clear(main());
    const heading = h("h1", { tabindex: "-1", id: "page-title" }, title);
    append(m, [headingExtra ? h("div", { class: "page-head" }, heading, headingExtra) : heading, content]);
    document.title = `${title} · ProofPix`;
    if (app.focusHeading) heading.focus({ preventScroll: true });
    app.focusHeading = false;
    window.scrollTo(0, 0);
    return m;
  }

  function backLink(href, label) {
    return h("p", { class: "back" }, h("a", { href }, `← ${label}`));
  }

  async function plugins() {
    if (!app.plugins) app.plugins = await api("GET", "/api/plugins");
    return app.plugins;
  }

  // ----- overview -----------------------------------------------------------

  const STAT_CARDS = [
    ["integrations_total", "Integrations", (s) => fmtInt(s.integrations_total)],
    ["integrations_active", "Active", (s) => fmtInt(s.integrations_active)],
    ["files_processed", "Files processed", (s) => fmtInt(s.files_processed)],
    ["success_rate", "Success rate", (s) => `${(s.success_rate * 100).toFixed(s.success_rate === 1 || s.success_rate === 0 ? 0 : 1)}%`,
      (s) => (s.runs_failed ? `${plural(s.runs_failed, "run")} failed of ${fmtInt(s.runs_total)}` : "")],
    ["high_risk", "High-risk files", (s) => fmtInt((s.by_risk.high || 0) + (s.by_risk.critical || 0))],
    ["integrations_failing", "Failing", (s) => fmtInt(s.integrations_failing)],
    ["queue", "Queued files", (s) => `${fmtInt(s.queue_pending)}${s.queue_parked ? ` (${fmtInt(s.queue_parked)} parked)` : ""}`],
  ];

  function statsSection() {
    return h("section", { "aria-labelledby": "stats-title", class: "stats-section" },
      h("h2", { id: "stats-title", class: "visually-hidden" }, "Headline numbers"),
      h("ul", { class: "stats", id: "stats" },
        STAT_CARDS.map(([key, label]) => h("li", { class: `stat stat-${key}` },
          h("span", { class: "stat-label", id: `stat-label-${key}` }, label),
          key === "high_risk"
            ? h("a", { class: "stat-value", id: `stat-${key}`, href: "#/files?risk=high,critical", "aria-describedby": `stat-label-${key}` }, "…")
            : h("span", { class: "stat-value", id: `stat-${key}`, "aria-describedby": `stat-label-${key}` }, "…"),
          h("span", { class: "stat-note", id: `stat-note-${key}` })))));
  }

  function fillStats(stats) {
    app.stats = stats;
    for (const [key, , value, note] of STAT_CARDS) {
      const el = document.getElementById(`stat-${key}`);
      if (el) el.textContent = value(stats);
      const noteEl = document.getElementById(`stat-note-${key}`);
      if (noteEl) noteEl.textContent = note ? note(stats) : "";
    }
  }

  function statusOf(i) {
    if (i.syncing) return ["syncing", "Syncing"];
    switch (i.status) {
      case "healthy": return ["healthy", "Healthy"];
      case "failing": return ["failing", "Failing"];
      case "needs-reauth": return ["needs-reauth", "Needs re-authorization"];
      case "paused": return ["paused", "Paused"];
      case "new": return ["new", "Not synced yet"];
      default: return ["new", i.status || "Unknown"];
    }
  }

  const isSource = (i) => (i.capabilities || []).includes("source");
  const isNotifier = (i) => (i.capabilities || []).includes("notifier");

  function lastSyncOf(i) {
    return i.last_batch ? i.last_batch.finished_at || i.last_batch.started_at : null;
  }

  /// When it last synced and how that went: a failed run says so, not only its time.
  function lastSyncText(i) {
    const b = i.last_batch;
    if (!b) return h("span", { class: "muted" }, isSource(i) ? "never" : "—");
    return h("span", { "data-last-outcome": b.outcome },
      b.outcome === "failed" ? [h("span", { class: "badge status status-failing" }, "failed"), " "] : null,
      b.outcome === "running" ? [h("span", { class: "badge status status-syncing" }, "running"), " "] : null,
      timeEl(lastSyncOf(i)));
  }

  function nextSyncText(i) {
    if (!isSource(i)) return h("span", { class: "muted" }, "notifier: runs on events");
    if (!i.enabled) return h("span", { class: "muted" }, "paused");
    return timeEl(i.next_sync, i.schedule ? `per ${i.schedule}` : "per the default schedule");
  }

  /// The action buttons for an integration, limited to the caller's role
  /// (the API refuses the rest anyway).
  function integrationActions(i, { onDetail = false } = {}) {
    const buttons = [];
    if (!onDetail) {
      buttons.push(h("a", { class: "button", href: `#/integrations/${encodeURIComponent(i.id)}`, "data-focus": "open" },
        "Open", h("span", { class: "visually-hidden" }, ` ${i.id}`)));
    }
    if (can("operator")) {
      if (isSource(i)) {
        buttons.push(h("button", {
          type: "button",
          class: "button primary",
          "data-action": "sync",
          "data-focus": "sync",
          "aria-disabled": i.syncing ? "true" : null,
          "data-stays-busy": i.syncing ? "true" : null,
          on: { click: (ev) => act(ev.currentTarget, () => syncNow(i)) },
        }, i.syncing ? "Syncing…" : "Sync now", h("span", { class: "visually-hidden" }, ` ${i.id}`)));
      }
      buttons.push(h("button", {
        type: "button",
        class: "button",
        "data-action": "test",
        "data-focus": "test",
        on: { click: (ev) => act(ev.currentTarget, () => testConnection(i.id)) },
      }, "Test connection", h("span", { class: "visually-hidden" }, ` of ${i.id}`)));
      buttons.push(h("button", {
        type: "button",
        class: "button",
        "data-action": i.enabled ? "disable" : "enable",
        "data-focus": "toggle",
        on: { click: (ev) => act(ev.currentTarget, () => setEnabled(i, !i.enabled)) },
      }, i.enabled ? "Pause" : "Resume", h("span", { class: "visually-hidden" }, ` ${i.id}`)));
    }
    if (can("admin")) {
      buttons.push(h("a", { class: "button", href: `#/integrations/${encodeURIComponent(i.id)}/edit`, "data-action": "edit", "data-focus": "edit" },
        "Edit", h("span", { class: "visually-hidden" }, ` ${i.id}`)));
      buttons.push(h("button", {
        type: "button",
        class: "button danger",
        "data-action": "delete",
        "data-focus": "delete",
        on: { click: (ev) => act(ev.currentTarget, () => deleteIntegration(i)) },
      }, "Delete", h("span", { class: "visually-hidden" }, ` ${i.id}`)));
    }
    return h("div", { class: "actions" }, buttons);
  }

  /// Its files now by the risk of their latest analysis, riskiest first, each count leading to
  /// those files; not the last run's, which a quiet run leaves at zero.
  function currentRisk(i) {
    const byRisk = i.current_risk || {};
    const total = Object.values(byRisk).reduce((a, b) => a + b, 0);
    if (!total) return h("span", { class: "muted" }, i.not_analysed ? `${plural(i.not_analysed, "file")} not analysed yet` : "no files yet");
    const risky = RISKS.slice(1).reverse().filter((r) => byRisk[r]);
    return h("span", { class: "chips" },
      risky.length ? risky.map((r) => h("a", {
        class: `badge risk risk-${r}`,
        href: `#/files?${fileQuery({ integration: i.id, risk: r })}`,
      }, `${fmtInt(byRisk[r])} ${r}`)) : h("span", {}, "no risk found"),
      h("span", { class: "muted small" }, ` of ${plural(total, "file")}`));
  }

  function integrationCard(i) {
    const [statusKey, statusText] = statusOf(i);
    const title = `card-title-${i.id}`;
    const live = app.liveFiles.has(i.id);
    return h("li", { class: `card integration status-${statusKey}`, "data-integration": i.id, "aria-labelledby": title },
      h("div", { class: "card-head" },
        h("h3", { id: title },
          h("a", { href: `#/integrations/${encodeURIComponent(i.id)}` }, i.id)),
        h("span", { class: `badge status status-${statusKey}`, "data-status": statusKey }, statusText)),
      h("p", { class: "muted card-sub" }, `${i.display_name || i.plugin || ""}${i.platform ? ` · ${i.platform}` : ""}`),
      live ? h("p", { class: "live-count", "data-live-count": i.id }, `${plural(app.liveFiles.get(i.id) || 0, "file")} analysed so far`) : null,
      (i.status === "failing" || i.status === "needs-reauth" || i.status === "paused") && i.last_error
        ? h("p", { class: "alert alert-error card-error" }, h("strong", {}, "Last error: "), i.last_error) : null,
      h("dl", { class: "facts" },
        h("dt", {}, "Last sync"), h("dd", {}, lastSyncText(i)),
        h("dt", {}, "Next sync"), h("dd", {}, nextSyncText(i)),
        h("dt", {}, "Queue"), h("dd", {}, `${fmtInt(i.queue_pending)} pending${i.queue_parked ? `, ${fmtInt(i.queue_parked)} parked` : ""}${i.stage_pending || i.stage_parked ? `; ${fmtInt(i.stage_pending)} waiting to be written back or notified${i.stage_parked ? `, ${fmtInt(i.stage_parked)} parked there` : ""}` : ""}`),
        isSource(i) ? [h("dt", {}, "Current risk"), h("dd", { "data-current-risk": i.id }, currentRisk(i))] : null,
        h("dt", {}, "Pixel stage"), h("dd", {}, i.pixels ? "on: QR codes and text in the pictures are read too" : "off: metadata only"),
        i.last_batch ? [h("dt", {}, "Last run"), h("dd", {}, h("a", { href: `#/batches/${i.last_batch.id}` }, `${plural(i.last_batch.total, "file")}`), " ", riskChips(i.last_batch.by_risk))] : null),
      integrationActions(i));
  }

  async function renderOverview() {
    const list = h("ul", { class: "cards", id: "integrations", "aria-busy": "true" });
    const recent = h("div", { id: "recent-batches" });
    const trends = h("div", { id: "trends", class: "trends", "aria-busy": "true" });
    showPage("Integrations", [
      statsSection(),
      h("section", { "aria-labelledby": "integrations-title" },
        h("div", { class: "section-head" },
          h("h2", { id: "integrations-title" }, "Connected systems"),
          can("admin") ? h("a", { class: "button primary", href: "#/new", id: "add-integration" }, "Add integration") : null),
        list),
      trendsSection(trends, "Trends over the last 30 days"),
      h("section", { "aria-labelledby": "recent-title" },
        h("div", { class: "section-head" },
          h("h2", { id: "recent-title" }, "Recent batches"),
          h("a", { href: "#/batches" }, "All batches")),
        recent),
    ]);
    const view = { name: "overview", onTheme: () => fillTrends(trends, null).catch(() => {}) };
    app.view = view;
    const load = async () => {
      const [stats, integrations, batches] = await Promise.all([
        api("GET", "/api/stats"),
        api("GET", "/api/integrations"),
        api("GET", "/api/batches?limit=5"),
      ]);
      if (app.view !== view) return;
      fillStats(stats);
      app.integrations = integrations;
      fillIntegrationCards(list, integrations);
      replaceKeepingFocus(recent.firstChild || recent.appendChild(h("div")), batchTable(batches, "The five newest batches"));
      // A trend that cannot be drawn says so in its place; the rest of the overview stands.
      await fillTrends(trends, null).catch((e) => append(clear(trends), [errorBox(e)]));
    };
    view.refresh = (event) => {
      if (event.type === "file") {
        api("GET", "/api/stats").then((s) => { if (app.view === view) fillStats(s); }).catch(() => {});
      } else {
        load().catch(() => {});
      }
    };
    await load();
  }

  // ----- trends ---------------------------------------------------------------

  const TREND_CHARTS = ["risk", "throughput", "duration"];

  function trendsSection(box, title) {
    return h("section", { "aria-labelledby": "trends-title" },
      h("div", { class: "section-head" }, h("h2", { id: "trends-title" }, title)),
      box);
  }

  /// The trends of the last 30 days (of one integration, or all): the daemon
  /// draws each picture (SVG, shown as an image from a `data:` address, so it
  /// runs nothing and loads nothing), with its description as the caption and
  /// the numbers as a table.
  async function fillTrends(box, integration) {
    const theme = document.documentElement.getAttribute("data-theme") === "dark" ? "dark" : "light";
    const q = `days=30&theme=${theme}${integration ? `&integration=${encodeURIComponent(integration)}` : ""}`;
    const t = await api("GET", `/api/trends?${q}`);
    if (!box.isConnected) return;
    const open = !!box.querySelector("details[open]");
    const withRuns = t.days.filter((d) => d.runs > 0).reverse();
    const next = h("div", { class: "trend-body" },
      h("div", { class: "trend-grid" },
        TREND_CHARTS.map((key) => {
          const c = t.charts[key];
          return h("figure", { class: "chart", "data-chart": key },
            h("img", { src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(c.svg)}`, alt: c.title, width: "640", height: "260" }),
            h("figcaption", { class: "small muted" }, c.desc));
        })),
      t.truncated ? h("p", { class: "alert" }, "More runs started in these days than a trend reads: the oldest days are incomplete.") : null,
      h("details", { class: "trend-table", open },
        h("summary", {}, "The numbers, day by day"),
        withRuns.length
          ? scrollTable(`Runs per day, ${t.from} to ${t.to}`,
            ["Day", "Runs", "Failed", "Files", "Critical", "High", "Medium", "Low", "None", "Files/s", "Mean run time", "Longest run"],
            withRuns.map((d) => [
              d.day,
              fmtInt(d.runs),
              fmtInt(d.runs_failed),
              fmtInt(d.files),
              ...["critical", "high", "medium", "low", "none"].map((r) => fmtInt(d.by_risk[r] || 0)),
              d.files_per_sec === null ? "—" : d.files_per_sec.toFixed(1),
              d.runs_finished ? fmtDuration(Math.round(d.duration_ms / d.runs_finished)) : "—",
              d.runs_finished ? fmtDuration(d.max_duration_ms) : "—",
            ]), { id: "trend-table" })
          : h("p", { class: "muted" }, "No run in these days.")));
    box.setAttribute("aria-busy", "false");
    replaceKeepingFocus(box.firstChild || box.appendChild(h("div")), next);
  }

  function fillIntegrationCards(list, integrations) {
    list.setAttribute("aria-busy", "false");
    if (integrations.length === 0) {
      clear(list);
      append(list, [h("li", { class: "card empty" },
        h("p", {}, "No integrations yet."),
        can("admin") ? h("p", {}, h("a", { href: "#/new" }, "Connect a system")) : h("p", { class: "muted" }, "An admin can connect one."))]);
      return;
    }
    const existing = new Map([...list.querySelectorAll("[data-integration]")].map((el) => [el.getAttribute("data-integration"), el]));
    const wanted = new Set(integrations.map((i) => i.id));
    for (const [id, el] of existing) if (!wanted.has(id)) el.remove();
    for (const el of list.querySelectorAll(".empty")) el.remove();
    let previous = null;
    for (const i of integrations) {
      const card = integrationCard(i);
      const old = existing.get(i.id);
      if (old && old.isConnected) replaceKeepingFocus(old, card);
      else if (previous) previous.after(card);
      else list.prepend(card);
      previous = card;
    }
  }

  // ----- integration actions ------------------------------------------------

  async function syncNow(i) {
    const r = await api("POST", `/api/integrations/${encodeURIComponent(i.id)}/sync`);
    toast(r.outcome === "started" ? `Sync of ${i.id} started.` : `${i.id} is already syncing; a follow-up run will pick up what is new.`);
  }

  async function setEnabled(i, enabled) {
    await api("POST", `/api/integrations/${encodeURIComponent(i.id)}/${enabled ? "enable" : "disable"}`);
    toast(enabled ? `${i.id} resumed: scheduled syncs run again.` : `${i.id} paused: no scheduled syncs until resumed.`);
  }

  async function deleteIntegration(i) {
    const ok = await confirmDialog(`Delete ${i.id}?`,
      `This removes the integration ${i.id}, its stored secrets, its queue and its file records. Batches and the audit trail stay.`,
      "Delete", true);
    if (!ok) return;
    await api("DELETE", `/api/integrations/${encodeURIComponent(i.id)}`);
    toast(`${i.id} deleted.`);
    if (currentPath() !== "") location.hash = "#/";
  }

  function testSteps(result) {
    return h("div", { class: "test-result" },
      h("p", { class: result.ok ? "alert alert-ok" : "alert alert-error", role: "status", id: "test-outcome" },
        result.ok ? "The connection works." : "The connection test failed."),
      h("ol", { class: "steps", id: "test-steps" },
        result.steps.map((s) => h("li", { class: s.ok ? "step ok" : "step failed" },
          h("span", { class: "step-mark", "aria-hidden": "true" }, s.ok ? "✓" : "✗"),
          h("span", { class: "visually-hidden" }, s.ok ? "Passed: " : "Failed: "),
          h("strong", {}, s.name),
          s.detail ? h("span", { class: "step-detail" }, ` — ${s.detail}`) : null))));
  }

  async function testConnection(id) {
    const result = await api("POST", `/api/integrations/${encodeURIComponent(id)}/test`);
    openDialog(`Connection test: ${id}`, testSteps(result), [
      h("button", { type: "button", class: "button primary", autofocus: true, on: { click: () => closeDialog(true) } }, "Done"),
    ]);
  }

  // ----- integration detail -------------------------------------------------

  async function renderIntegration(id) {
    const [i, batches] = await Promise.all([
      api("GET", `/api/integrations/${encodeURIComponent(id)}`),
      api("GET", `/api/batches?integration=${encodeURIComponent(id)}&limit=20`),
    ]);
    const header = integrationHeader(i);
    const batchBox = h("div", {}, isSource(i) ? batchTable(batches, `Batches of ${id}`)
      : h("p", { class: "muted" }, "A notifier does not sync: it sends what its sources' runs find, as their batches finish."));
    const parkedBox = h("div", { id: "parked" });
    const remediationBox = h("div", { id: "remediation", "aria-busy": "true" });
    const trends = h("div", { id: "trends", class: "trends", "aria-busy": "true" });
    showPage(id, [
      backLink("#/", "All integrations"),
      header,
      h("section", { "aria-labelledby": "config-title", class: "card" },
        h("h2", { id: "config-title" }, "Configuration"),
        integrationFacts(i)),
      isSource(i) ? reportSection(id) : null,
      isSource(i) ? trendsSection(trends, "Trends over the last 30 days") : null,
      h("section", { "aria-labelledby": "batches-title" },
        h("h2", { id: "batches-title" }, "Batches"), batchBox),
      isSource(i) ? h("section", { "aria-labelledby": "parked-title" },
        h("h2", { id: "parked-title" }, "Parked files"), parkedBox) : null,
      isSource(i) ? h("section", { "aria-labelledby": "remediation-title", class: "card" },
        h("h2", { id: "remediation-title" }, "Remediation"), remediationBox) : null,
    ], { headingExtra: h("span", { class: `badge status status-${statusOf(i)[0]}`, id: "detail-status" }, statusOf(i)[1]) });
    if (isSource(i)) fillTrends(trends, id).catch((e) => append(clear(trends), [errorBox(e)]));
    if (isSource(i)) fillParked(parkedBox, id).catch((e) => append(clear(parkedBox), [errorBox(e)]));
    if (isSource(i)) fillRemediation(remediationBox, id, i.platform).catch((e) => append(clear(remediationBox), [errorBox(e)]));
    let current = header;
    const view = {
      name: "integration",
      onTheme: () => { if (isSource(i)) fillTrends(trends, id).catch(() => {}); },
      refresh: async (event) => {
        if (event.integration && event.integration !== id) return;
        if (event.type === "file") {
          updateLiveCount(id);
          return;
        }
        let fresh;
        try {
          fresh = await api("GET", `/api/integrations/${encodeURIComponent(id)}`);
        } catch (e) {
          if (e.status === 404 && app.view === view) location.hash = "#/";
          return;
        }
        const bs = await api("GET", `/api/batches?integration=${encodeURIComponent(id)}&limit=20`);
        if (app.view !== view) return;
        const next = integrationHeader(fresh);
        replaceKeepingFocus(current, next);
        current = next;
        const badge = $("#detail-status");
        if (badge) {
          badge.className = `badge status status-${statusOf(fresh)[0]}`;
          badge.textContent = statusOf(fresh)[1];
        }
        if (isSource(fresh)) replaceKeepingFocus(batchBox.firstChild, batchTable(bs, `Batches of ${id}`));
        if (isSource(fresh)) fillTrends(trends, id).catch(() => {});
      },
    };
    app.view = view;
  }

  /// The printable compliance report of a period: a plain form whose GET
  /// opens the daemon's report page (the session cookie authenticates it).
  function reportSection(id) {
    const day = (d) => d.toISOString().slice(0, 10);
    const today = new Date();
    const monthAgo = new Date(today.getTime() - 29 * 86400000);
    return h("section", { "aria-labelledby": "report-title", class: "card" },
      h("h2", { id: "report-title" }, "Compliance report"),
      h("p", { class: "muted" }, "A printable page for a period: files by risk and privacy category, the top risks with links, the actions taken and the audit chain's verification. Print it, or save it as PDF from the print dialog."),
      h("form", { method: "get", action: `/api/integrations/${encodeURIComponent(id)}/report`, id: "report-form", class: "report-form" },
        h("div", { class: "field" }, h("label", { for: "report-from" }, "From"),
          h("input", { type: "date", id: "report-from", name: "from", value: day(monthAgo), required: true })),
        h("div", { class: "field" }, h("label", { for: "report-to" }, "To (included)"),
          h("input", { type: "date", id: "report-to", name: "to", value: day(today), required: true })),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "button", id: "open-report" }, "Open the report"))));
  }

  function integrationHeader(i) {
    const live = app.liveFiles.has(i.id);
    return h("section", { class: "card", "aria-label": "Status", id: "integration-status", "data-integration-detail": i.id },
      h("p", { class: "muted" }, `${i.display_name} ${i.plugin_version ? `(${i.plugin} ${i.plugin_version})` : ""} · ${i.platform}`),
      live ? h("p", { class: "live-count", "data-live-count": i.id }, `${plural(app.liveFiles.get(i.id) || 0, "file")} analysed so far`) : null,
      i.last_error && i.status !== "healthy" ? h("p", { class: "alert alert-error" }, h("strong", {}, "Last error: "), i.last_error) : null,
      i.status === "needs-reauth" ? h("p", { class: "alert" }, "The platform refused the stored credentials. Update the secrets (Edit) or authorize again.") : null,
      h("dl", { class: "facts" },
        h("dt", {}, "Status"), h("dd", {}, statusOf(i)[1]),
        h("dt", {}, "Last sync"), h("dd", {}, lastSyncText(i)),
        isSource(i) ? [h("dt", {}, "Current risk"), h("dd", { "data-current-risk": i.id }, currentRisk(i))] : null,
        h("dt", {}, "Next sync"), h("dd", {}, nextSyncText(i)),
        h("dt", {}, "Queue"), h("dd", {}, `${fmtInt(i.queue_pending)} pending, ${fmtInt(i.queue_parked)} parked`)),
      integrationActions(i, { onDetail: true }),
      can("admin") && i.status === "needs-reauth" ? h("div", { class: "actions" },
        h("button", { type: "button", class: "button", on: { click: (ev) => act(ev.currentTarget, () => authorize(i.id)) } }, "Authorize again")) : null);
  }

  async function authorize(id) {
    const r = await api("POST", `/api/integrations/${encodeURIComponent(id)}/authorize`);
    let url;
    try {
      url = new URL(r.url);
    } catch (e) {
      throw new Error("The daemon returned an authorization address that is not a URL.");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("The authorization address is not http(s).");
    await openDialog("Authorize", h("p", {},
      "Open the platform's consent page, approve ProofPix, then come back: ",
      h("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" }, url.host)), [
      h("button", { type: "button", class: "button", autofocus: true, on: { click: () => closeDialog(true) } }, "Done"),
    ]);
  }

  function listOrNone(items) {
    return items && items.length ? items.join(", ") : h("span", { class: "muted" }, "none");
  }

  function integrationFacts(i) {
    const config = Object.entries(i.config || {});
    const sub = i.subscriptions;
    return h("dl", { class: "facts wide" },
      h("dt", {}, "Plugin"), h("dd", {}, `${i.plugin} ${i.plugin_version}`),
      h("dt", {}, "Schedule"), h("dd", {}, i.schedule || h("span", { class: "muted" }, "the default schedule (Settings)")),
      config.map(([k, v]) => [h("dt", {}, k), h("dd", { class: "pre" }, v)]),
      h("dt", {}, "Secrets set"), h("dd", {}, listOrNone(i.secrets_set)),
      h("dt", {}, "Allowed hosts"), h("dd", {}, listOrNone(i.grant.hosts)),
      h("dt", {}, "Mounts"), h("dd", {}, listOrNone(i.grant.mounts)),
      i.grant.write && i.grant.write.length ? [h("dt", {}, "Writable"), h("dd", {}, listOrNone(i.grant.write))] : null,
      h("dt", {}, "Loopback / private addresses"), h("dd", {}, `${i.grant.allow_loopback ? "allowed" : "refused"} / ${i.grant.allow_private ? "allowed" : "refused"}`),
      sub ? [
        h("dt", {}, "Notifies about"), h("dd", {}, listOrNone(sub.events)),
        h("dt", {}, "From sources"), h("dd", {}, listOrNone(sub.sources)),
        h("dt", {}, "Lowest risk alerted"), h("dd", {}, sub.min_risk || "high"),
        h("dt", {}, "Digest"), h("dd", {}, sub.digest ? "one message per run" : "one message per file"),
      ] : null,
      h("dt", {}, "Created"), h("dd", {}, fmtTime(i.created_at)),
      h("dt", {}, "Updated"), h("dd", {}, fmtTime(i.updated_at)));
  }

  const REMEDIATION_ACTIONS = {
    "replace-with-sanitised": "Replace the file with its sanitised copy",
    "restrict-sharing": "Restrict sharing (remove public links)",
    "apply-label": "Apply a label",
    "quarantine": "Move to quarantine, leaving a tombstone",
    "notify-owner": "Notify the file's owner",
  };
  const actionLabel = (a) => REMEDIATION_ACTIONS[a] || a;

  /// The integration's remediation policy: what ProofPix does on the platform
  /// about risky files, and, for an admin, a form to set or remove it. A
  /// policy only ever enables actions the plugin offers; simulation is the
  /// default and turning it off asks first.
  async function fillRemediation(box, id, platform) {
    const r = await api("GET", `/api/integrations/${encodeURIComponent(id)}/remediation`);
    const p = r.policy;
    const refill = () => fillRemediation(box, id, platform);
    clear(box);
    box.setAttribute("aria-busy", "false");
    append(box, [
      p ? h("dl", { class: "facts", id: "remediation-summary" },
        h("dt", {}, "Actions"), h("dd", {}, listOrNone(p.actions.map(actionLabel))),
        h("dt", {}, "Files at"), h("dd", {}, `${p.min_risk} risk or above`),
        h("dt", {}, "Delay"), h("dd", {}, p.delay_secs ? `${fmtDuration(p.delay_secs * 1000)} after the analysis` : "none: at the end of the sync"),
        h("dt", {}, "Mode"), h("dd", { "data-remediation-mode": p.simulate ? "simulate" : "act" },
          p.simulate ? "simulation: each action is reported and audited, nothing changes" : `acts on ${platform}`),
        p.label ? [h("dt", {}, "Label"), h("dd", {}, p.label)] : null)
        : h("p", { id: "remediation-summary" }, `No policy: ProofPix reports risks and changes nothing on ${platform}.`),
      h("p", { class: "muted" }, r.available.length
        ? `This plugin offers: ${r.available.map(actionLabel).join("; ")}.`
        : "This plugin offers no remediation action."),
    ]);
    if (!can("admin") || !r.available.length) return;
    const current = p || { actions: [], min_risk: "high", delay_secs: 0, simulate: true };
    const checks = r.available.map((a) => h("div", { class: "field check" },
      h("input", { type: "checkbox", id: `remediate-${a}`, name: "action", value: a, checked: current.actions.includes(a) }),
      h("label", { for: `remediate-${a}` }, actionLabel(a))));
    const minRisk = h("select", { id: "remediation-min-risk" },
      ["none", "low", "medium", "high", "critical"].map((v) => h("option", { value: v, selected: v === current.min_risk }, v)));
    const delay = h("input", { type: "number", id: "remediation-delay", min: "0", step: "60", value: String(current.delay_secs), "aria-describedby": "remediation-delay-help" });
    const simulate = h("input", { type: "checkbox", id: "remediation-simulate", checked: current.simulate });
    const label = r.available.includes("apply-label")
      ? h("input", { type: "text", id: "remediation-label", value: current.label || "" }) : null;
    const form = h("form", { id: "remediation-form", "aria-label": "Remediation policy" },
      h("fieldset", {}, h("legend", {}, "Actions"), checks),
      h("div", { class: "field" }, h("label", { for: "remediation-min-risk" }, "Act on files at this risk or above"), minRisk),
      h("div", { class: "field" }, h("label", { for: "remediation-delay" }, "Delay (seconds)"), delay,
        h("p", { class: "help", id: "remediation-delay-help" }, "Wait this long after a file's analysis before acting, so an owner can fix it first. 0: at the end of the sync.")),
      label ? h("div", { class: "field" }, h("label", { for: "remediation-label" }, "Label to apply"), label) : null,
      h("div", { class: "field check" }, simulate, h("label", { for: "remediation-simulate" }, "Simulate: report what would be done, change nothing")),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "button primary" }, "Save policy"),
        p ? h("button", {
          type: "button",
          class: "button danger",
          id: "remediation-remove",
          on: {
            click: (ev) => act(ev.currentTarget, async () => {
              if (!await confirmDialog("Remove the policy", `ProofPix will stop acting on ${platform} for ${id}; pending actions are not run.`, "Remove", true)) return;
              await api("DELETE", `/api/integrations/${encodeURIComponent(id)}/remediation`);
              toast("Remediation policy removed.");
              await refill();
            }),
          },
        }, "Remove policy") : null));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act(form.querySelector("button[type=submit]"), async () => {
        const policy = {
          actions: checks.map((c) => c.querySelector("input")).filter((c) => c.checked).map((c) => c.value),
          min_risk: minRisk.value,
          delay_secs: Math.max(0, Math.floor(Number(delay.value) || 0)),
          simulate: simulate.checked,
        };
        if (label && label.value.trim()) policy.label = label.value.trim();
        if (!policy.simulate && policy.actions.length
          && !await confirmDialog("Act on the platform", `With simulation off, ProofPix changes files on ${platform} for ${id}: ${policy.actions.map(actionLabel).join("; ")}.`, "Act for real", true)) return;
        await api("PUT", `/api/integrations/${encodeURIComponent(id)}/remediation`, policy);
        toast(policy.simulate ? "Remediation policy saved (simulation)." : "Remediation policy saved: it acts on the next sync.");
        await refill();
      });
    });
    append(box, [form]);
  }

  async function fillParked(box, id) {
    const parked = await api("GET", `/api/integrations/${encodeURIComponent(id)}/parked`);
    clear(box);
    if (parked.length === 0) {
      append(box, [h("p", { class: "muted" }, "No parked files: every file either succeeded or is still being retried.")]);
      return;
    }
    append(box, [scrollTable("Parked files", ["File", "Attempts", "Last error", can("operator") ? "Action" : null].filter(Boolean),
      parked.map((p) => [
        h("span", { class: "filename" }, p.remote_id),
        fmtInt(p.attempts),
        p.last_error || "—",
        can("operator") ? h("button", {
          type: "button",
          class: "button",
          on: {
            click: (ev) => act(ev.currentTarget, async () => {
              await api("POST", `/api/integrations/${encodeURIComponent(id)}/parked/${p.item}/retry`);
              toast("Queued again.");
              await fillParked(box, id);
            }),
          },
        }, "Retry") : null,
      ].filter((c) => c !== null)))]);
  }

  // ----- tables -------------------------------------------------------------

  /// A table in a keyboard-focusable region. On a wide screen it scrolls sideways inside its
  /// box; on a phone each row becomes a block with every cell labelled by its column (CSS,
  /// `data-label`), so no column (a file's Risk, a finding's Value) is off screen. The explicit
  /// roles keep it a table for screen readers when CSS changes its display.
  function scrollTable(caption, headers, rows, { id = null } = {}) {
    return h("div", { class: "table-wrap stack", role: "region", "aria-label": caption, tabindex: "0" },
      h("table", { id, role: "table" },
        h("caption", { class: "visually-hidden" }, caption),
        h("thead", { role: "rowgroup" }, h("tr", { role: "row" }, headers.map((x) => h("th", { scope: "col", role: "columnheader" }, x)))),
        h("tbody", { role: "rowgroup" }, rows.map((cells) => h("tr", { role: "row" }, cells.map((c, n) => (n === 0
          ? h("th", { scope: "row", role: "rowheader" }, c)
          : h("td", { role: "cell", "data-label": headers[n] }, c))))))));
  }

  /// A run's outcome: running, completed, or failed with its reason (the reason is the
  /// platform's or the plugin's words, so text only).
  function batchOutcome(b) {
    if (b.outcome === "running" || !b.finished_at) return h("span", { class: "badge status status-syncing", "data-outcome": "running" }, "running");
    if (b.outcome === "failed") {
      return h("span", { class: "outcome-failed", "data-outcome": "failed" },
        h("span", { class: "badge status status-failing" }, "failed"),
        b.error ? h("span", { class: "small text-error outcome-error" }, ` ${b.error}`) : null);
    }
    return h("span", { class: "badge status status-healthy", "data-outcome": "ok" }, "completed");
  }

  function batchTable(batches, caption) {
    if (!batches.length) return h("p", { class: "muted" }, "No batches yet: run a sync to create one.");
    return scrollTable(caption, ["Batch", "Integration", "Started", "Outcome", "Duration", "Files", "OK", "Errors", "Risk"],
      batches.map((b) => [
        h("a", { href: `#/batches/${b.id}`, "data-batch": b.id }, `#${b.id}`),
        h("a", { href: `#/integrations/${encodeURIComponent(b.integration)}` }, b.integration),
        timeEl(b.started_at),
        batchOutcome(b),
        b.finished_at ? fmtDuration(b.duration_ms) : "—",
        fmtInt(b.total),
        fmtInt(b.ok),
        b.errors ? h("span", { class: "text-error" }, fmtInt(b.errors)) : "0",
        riskChips(b.by_risk),
      ]), { id: "batch-table" });
  }

  // ----- files ---------------------------------------------------------------

  const FILE_CATEGORIES = ["gps", "location-text", "owner", "person", "contact", "author", "serial", "device",
    "unique-id", "thumbnail", "history", "timestamp", "copyright", "text", "trailer"];
  const FILE_FILTERS = ["q", "risk", "category", "integration", "status", "from", "to", "sort"];

  /// The filters in the address (`#/files?risk=high,critical&q=...`).
  function fileFiltersFromHash() {
    const i = location.hash.indexOf("?");
    const params = new URLSearchParams(i < 0 ? "" : location.hash.slice(i + 1));
    const out = {};
    for (const k of FILE_FILTERS) if (params.get(k)) out[k] = params.get(k);
    return out;
  }

  function fileQuery(filters, extra = {}) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries({ ...filters, ...extra })) if (v) params.set(k, v);
    return params.toString();
  }

  /// The date inputs give a day; the API takes a time (UTC midnight; `to` is exclusive,
  /// so the day after the one chosen).
  function dayToTime(day, next) {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(day || "")) return "";
    const t = new Date(`${day}T00:00:00Z`);
    if (next) t.setUTCDate(t.getUTCDate() + 1);
    return t.toISOString().replace(".000Z", "Z");
  }

  async function renderFiles() {
    const integrations = await api("GET", "/api/integrations");
    const initial = fileFiltersFromHash();
    const option = (value, label, current) => h("option", { value, selected: value === (current || "") }, label);
    const field = (id, label, control) => h("div", { class: "field" }, h("label", { for: id }, label), control);
    const search = h("input", { type: "search", id: "files-q", value: initial.q || "", maxlength: "200",
      placeholder: "File name, path or id", autocomplete: "off" });
    const risk = h("select", { id: "files-risk" },
      option("", "Any risk", initial.risk), option("critical", "Critical", initial.risk),
      option("high,critical", "High or critical", initial.risk), option("medium,high,critical", "Medium or above", initial.risk),
      option("high", "High", initial.risk), option("medium", "Medium", initial.risk),
      option("low", "Low", initial.risk), option("none", "None", initial.risk));
    const category = h("select", { id: "files-category" }, option("", "Any finding", initial.category),
      FILE_CATEGORIES.map((c) => option(c, c, initial.category)));
    const integration = h("select", { id: "files-integration" }, option("", "All integrations", initial.integration),
      integrations.map((i) => option(i.id, `${i.id} (${i.platform || i.plugin})`, initial.integration)));
    const status = h("select", { id: "files-status" }, option("", "Any state", initial.status),
      ["pending", "analysed", "written", "skipped", "failed", "parked", "removed"].map((x) => option(x, x, initial.status)));
    const from = h("input", { type: "date", id: "files-from", value: (initial.from || "").slice(0, 10) });
    const to = h("input", { type: "date", id: "files-to" });
    const sort = h("select", { id: "files-sort" }, option("risk", "Riskiest first", initial.sort),
      option("name", "Name", initial.sort), option("analysed", "Latest analysis first", initial.sort));
    const form = h("form", { class: "filters", role: "search", "aria-label": "Find files", id: "files-form" },
      field("files-q", "Search", search), field("files-risk", "Risk", risk), field("files-category", "Finding", category),
      field("files-integration", "Integration", integration), field("files-status", "State", status),
      field("files-from", "Analysed from", from), field("files-to", "Analysed until", to), field("files-sort", "Order", sort));
    const exportLink = h("a", { class: "button", id: "files-export", download: "proofpix-files.csv", href: "/api/files.csv" }, "Export CSV");
    const box = h("div", { id: "files-results" });
    const pager = h("div", { class: "actions pager" });
    let pages = [null]; // cursors: pages[n] is the `after` of page n
    let page = 0;
    const filters = () => ({
      q: search.value.trim(), risk: risk.value, category: category.value, integration: integration.value,
      status: status.value, from: dayToTime(from.value, false), to: dayToTime(to.value, true),
      sort: sort.value === "risk" ? "" : sort.value,
    });
    const load = async () => {
      const f = filters();
      const query = fileQuery(f);
      history.replaceState(null, "", `#/files${query ? `?${query}` : ""}`);
      exportLink.setAttribute("href", `/api/files.csv${query ? `?${query}` : ""}`);
      const result = await api("GET", `/api/files?${fileQuery(f, { limit: "50", after: pages[page] || "" })}`);
      if (app.view !== view) return;
      pages[page + 1] = result.next;
      clear(box);
      if (!result.files.length) {
        append(box, [h("p", { class: "muted", id: "files-empty" }, page ? "No more files." : "No file matches these filters.")]);
      } else {
        append(box, [scrollTable("Files", ["File", "Risk", "Findings", "Integration", "State", "Analysed"],
          result.files.map((x) => [
            h("span", { class: "file-cell" },
              h("a", { href: fileHref(x.integration, x.remote_id), class: "filename", "data-file": x.remote_id }, x.name || x.remote_id),
              h("span", { class: "muted small file-id" }, x.remote_id),
              platformLink(x.web_url, `Open in ${x.platform || "the platform"}`, {
                class: "small platform-link", "data-platform-link": x.remote_id,
                "aria-label": `Open ${x.name || x.remote_id} in ${x.platform || "the platform"} (new tab)`,
              })),
            x.risk ? riskBadge(x.risk) : h("span", { class: "muted" }, "not analysed"),
            x.categories.length ? x.categories.join(", ") : h("span", { class: "muted" }, "—"),
            h("span", {}, h("a", { href: `#/integrations/${encodeURIComponent(x.integration)}` }, x.integration),
              x.platform ? h("span", { class: "muted small" }, ` ${x.platform}`) : null),
            x.status,
            timeEl(x.analysed_at),
          ]), { id: "files-table" })]);
      }
      clear(pager);
      append(pager, [
        h("button", { type: "button", class: "button", id: "files-prev", disabled: page === 0,
          on: { click: () => { page -= 1; load().catch(showError); } } }, "Previous page"),
        h("span", { class: "muted", "aria-live": "polite" }, `Page ${page + 1}`),
        h("button", { type: "button", class: "button", id: "files-next", disabled: !result.next,
          on: { click: () => { page += 1; load().catch(showError); } } }, "Next page"),
      ]);
    };
    const showError = (e) => append(clear(box), [errorBox(e)]);
    const restart = () => { pages = [null]; page = 0; load().catch(showError); };
    let timer = null;
    search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(restart, 250); });
    for (const el of [risk, category, integration, status, from, to, sort]) el.addEventListener("change", restart);
    form.addEventListener("submit", (e) => { e.preventDefault(); restart(); });
    showPage("Files", [
      h("p", { class: "muted" }, "Every file of every integration with its latest analysis. Names and ids are the platform's."),
      form, h("div", { class: "actions" }, exportLink), box, pager,
    ]);
    const view = { name: "files", refresh: (e) => { if (e.type === "sync-finished") load().catch(() => {}); } };
    app.view = view;
    await load();
  }

  // ----- batches --------------------------------------------------------------

  async function renderBatches() {
    const integrations = await api("GET", "/api/integrations");
    const select = h("select", { id: "batch-filter" },
      h("option", { value: "" }, "All integrations"),
      integrations.map((i) => h("option", { value: i.id }, i.id)));
    const box = h("div", {});
    const exportLink = h("a", { class: "button", id: "batches-export", download: "proofpix-batches.csv", href: "/api/batches.csv" }, "Export CSV");
    const load = async () => {
      const q = select.value ? `&integration=${encodeURIComponent(select.value)}` : "";
      exportLink.setAttribute("href", `/api/batches.csv${select.value ? `?integration=${encodeURIComponent(select.value)}` : ""}`);
      const batches = await api("GET", `/api/batches?limit=100${q}`);
      if (app.view !== view) return;
      clear(box);
      append(box, [batchTable(batches, "Batch history")]);
    };
    select.addEventListener("change", () => load().catch((e) => append(clear(box), [errorBox(e)])));
    showPage("Batch history", [
      h("p", { class: "muted" }, "Every run, newest first. Open one to see each file's risk and findings."),
      h("div", { class: "field inline" }, h("label", { for: "batch-filter" }, "Integration"), select),
      h("div", { class: "actions" }, exportLink),
      box,
    ]);
    const view = { name: "batches", refresh: (e) => { if (e.type !== "file") load().catch(() => {}); } };
    app.view = view;
    await load();
  }

  async function renderBatch(id) {
    const b = await api("GET", `/api/batches/${id}`);
    const results = [...b.results].sort((x, y) => riskRank(y.risk) - riskRank(x.risk) || y.score - x.score);
    const findingsCount = (r) => (r.report && Array.isArray(r.report.findings) ? r.report.findings.length : 0);
    showPage(`Batch #${b.id}`, [
      backLink("#/batches", "Batch history"),
      b.outcome === "failed" ? h("p", { class: "alert alert-error", id: "batch-error" }, h("strong", {}, "This run failed: "), b.error || "no reason was recorded") : null,
      h("section", { class: "card", "aria-label": "Summary" },
        h("dl", { class: "facts" },
          h("dt", {}, "Integration"), h("dd", {}, h("a", { href: `#/integrations/${encodeURIComponent(b.integration)}` }, b.integration)),
          h("dt", {}, "Started"), h("dd", {}, fmtTime(b.started_at)),
          h("dt", {}, "Finished"), h("dd", {}, b.finished_at ? fmtTime(b.finished_at) : "still running"),
          h("dt", {}, "Outcome"), h("dd", {}, batchOutcome(b)),
          h("dt", {}, "Duration"), h("dd", {}, fmtDuration(b.duration_ms)),
          h("dt", {}, "Files"), h("dd", {}, `${fmtInt(b.total)} (${fmtInt(b.ok)} analysed, ${fmtInt(b.errors)} failed, ${fmtInt(b.retried)} retried)`),
          h("dt", {}, "Risk"), h("dd", {}, riskChips(b.by_risk)))),
      b.failures.length ? h("section", { "aria-labelledby": "failures-title" },
        h("h2", { id: "failures-title" }, "Failed files"),
        scrollTable("Failed files", ["File", "Error"], b.failures.map((f) => [h("span", { class: "filename" }, f.remote_id), f.error]))) : null,
      h("section", { "aria-labelledby": "files-title" },
        h("h2", { id: "files-title" }, "Files"),
        results.length > 0 && b.ok > results.length ? h("p", { class: "muted", id: "files-bounded" }, `The ${fmtInt(results.length)} riskiest of ${fmtInt(b.ok)} analysed files are listed.`) : null,
        results.length === 0 ? h("p", { class: "muted" }, "No analysed files in this batch.")
          : scrollTable("Files, highest risk first", ["File", "Risk", "Score", "Findings", "Format"],
            results.map((r) => [
              h("span", { class: "file-cell" },
                h("a", { href: `#/batches/${b.id}/files/${r.id}`, class: "filename", "data-result": r.id, "data-risk": r.risk }, fileNameOf(r)),
                fileNameOf(r) !== r.remote_id ? h("span", { class: "muted small file-id" }, r.remote_id) : null),
              riskBadge(r.risk),
              fmtInt(r.score),
              fmtInt(findingsCount(r)),
              (r.report && r.report.format) || "—",
            ]), { id: "file-table" })),
    ]);
  }

  function sourceText(s) {
    if (!s || typeof s !== "object") return "—";
    const parts = [s.family, s.group].filter(Boolean).join(" · ");
    return `${parts}${s.name ? ` · ${s.name}` : ""}${s.tag ? ` (${s.tag})` : ""}`;
  }

  async function renderResult(id, batchId) {
    const r = await api("GET", `/api/results/${id}`);
    const report = r.report || {};
    showPage(fileNameOf(r), [
      batchId ? backLink(`#/batches/${batchId}`, `Batch #${batchId}`) : backLink("#/batches", "Batch history"),
      h("p", {}, h("a", { href: fileHref(r.integration, r.remote_id), id: "file-page-link" }, "The file's page: its latest analysis and remediation")),
      h("section", { class: "card", "aria-label": "File summary" },
        h("dl", { class: "facts" },
          h("dt", {}, "Risk"), h("dd", { id: "file-risk" }, riskBadge(r.risk), ` score ${fmtInt(r.score)}`),
          h("dt", {}, "Integration"), h("dd", {}, h("a", { href: `#/integrations/${encodeURIComponent(r.integration)}` }, r.integration)),
          h("dt", {}, "Format"), h("dd", {}, report.format || "—"),
          h("dt", {}, "Version"), h("dd", { class: "pre" }, r.file_version || "—"),
          h("dt", {}, "Analysed"), h("dd", {}, fmtTime(r.created_at)),
          h("dt", {}, "Platform id"), h("dd", { class: "filename" }, r.remote_id),
          report.error ? [h("dt", {}, "Read problem"), h("dd", { class: "text-error" }, report.error)] : null)),
      findingsSection(report),
    ]);
  }

  const fileHref = (integration, remoteId) => `#/files/${encodeURIComponent(integration)}/${encodeURIComponent(remoteId)}`;

  /// A link to the file on its platform, from the plugin's `web_url`: hostile, so a link only
  /// when it is an absolute http(s) URL with a host and no user name (the API serves nothing
  /// else; checked again here because it is the plugin's value). The href is the parsed,
  /// normalised URL; it opens in a new tab that cannot reach this page (`noopener`) and is
  /// not told where it came from (`noreferrer`). Anything else: `null`, and the name stays text.
  function platformLink(url, text, props = {}) {
    if (typeof url !== "string" || url.length > 2048) return null;
    let u;
    try {
      u = new URL(url);
    } catch (e) {
      return null;
    }
    if ((u.protocol !== "https:" && u.protocol !== "http:") || !u.hostname || u.username || u.password) return null;
    return h("a", { ...props, href: u.href, target: "_blank", rel: "noopener noreferrer" }, text);
  }
  /// A result's file name: the report keeps the name it was analysed under as its `path`.
  const fileNameOf = (r) => (r.report && typeof r.report.path === "string" && r.report.path) || r.remote_id;

  /// What each finding category is, why it matters and what to do, in plain words.
  const CATEGORY_TEXT = {
    "gps": ["Where the picture was taken (GPS coordinates)", "It can reveal a home, a client's site or someone's movements.", "Remove the location: a sanitised copy drops it."],
    "location-text": ["A place written into the metadata (city, address, site name)", "It says where the picture was taken, even without GPS.", "Remove it with a sanitised copy."],
    "owner": ["The camera or phone owner's name", "It identifies a person who may not want to be named.", "Remove it with a sanitised copy."],
    "person": ["People named or tagged in the picture", "It identifies the people shown.", "Check the consent to publish; remove the tags with a sanitised copy."],
    "contact": ["Contact details (e-mail, phone, address) in the metadata", "Anyone who gets the file can reach that person.", "Remove them with a sanitised copy."],
    "author": ["The author or creator's name", "It identifies who made or edited the file.", "Remove it with a sanitised copy if it should not travel with the file."],
    "serial": ["A device or lens serial number", "It links every picture taken with that device to the same person.", "Remove it with a sanitised copy."],
    "device": ["The camera, phone or software used", "Usually harmless alone; combined with other data it narrows down who took it.", "Nothing, unless the device itself is sensitive."],
    "unique-id": ["A unique id of the file or document", "It can link copies of the file across systems.", "Remove it with a sanitised copy if the file leaves the organisation."],
    "thumbnail": ["An embedded preview image", "It can still show what was cropped or edited out of the picture.", "A sanitised copy drops the preview."],
    "thumbnail-mismatch": ["A preview that differs from the picture", "What was cropped or blurred may still be visible in the preview.", "Replace the file with a sanitised copy before sharing."],
    "history": ["Editing history", "It can reveal earlier versions, file paths and who edited.", "Remove it with a sanitised copy."],
    "timestamp": ["When the picture was taken or edited", "Usually low risk; combined with a place it shows someone's routine.", "Nothing, unless the time itself is sensitive."],
    "copyright": ["A copyright or rights notice", "Informational: it may name a person.", "Nothing in most cases."],
    "text": ["Free text in the metadata (comments, descriptions)", "It can hold anything people typed: names, notes, case numbers.", "Read the value; remove it with a sanitised copy if it is personal."],
    "trailer": ["Data hidden after the end of the image", "It can carry another file or a whole document unseen.", "Replace the file with a sanitised copy."],
    "embedded-media": ["Another image or file inside this one", "It can show something other than the visible picture.", "Replace the file with a sanitised copy."],
    "text-pii": ["Personal data written in the picture itself (card numbers, IBANs, ids, e-mails)", "Anyone who sees the picture can read it; removing metadata does not help.", "Restrict or quarantine the file, or redact and upload it again."],
    "barcode": ["A QR code or barcode in the picture (Wi-Fi passwords, contacts, boarding passes, payments)", "Anyone who sees the picture can scan it.", "Restrict or quarantine the file; change a Wi-Fi password it shows."],
    "face": ["Faces in the picture", "The people shown can be recognised.", "Check consent; restrict sharing if it is not given."],
  };

  /// The findings of a report, grouped by category in plain words first, then in detail.
  function findingsSection(report) {
    const findings = Array.isArray(report.findings) ? report.findings : [];
    const sorted = [...findings].sort((a, b) => riskRank(b.severity) - riskRank(a.severity));
    const groups = new Map();
    for (const f of sorted) {
      const c = String(f.category || "other");
      const g = groups.get(c) || { severity: f.severity, count: 0 };
      g.count += 1;
      groups.set(c, g);
    }
    return h("section", { "aria-labelledby": "findings-title" },
      h("h2", { id: "findings-title" }, `Findings (${findings.length})`),
      sorted.length === 0 ? h("p", { class: "muted" }, "No privacy findings in this file.") : [
        h("ul", { class: "why-list", id: "why-list" }, [...groups].map(([c, g]) => {
          const [what, why, todo] = CATEGORY_TEXT[c] || [c, "", ""];
          return h("li", { class: "why", "data-category": c },
            riskBadge(g.severity), " ", h("strong", {}, what), g.count > 1 ? ` (${g.count})` : "",
            why ? h("span", { class: "why-matters" }, ` Why it matters: ${why}`) : null,
            todo ? h("span", { class: "why-todo" }, ` What to do: ${todo}`) : null);
        })),
        scrollTable("Findings, most severe first", ["Category", "Code", "Severity", "Source", "Value", "Detail"],
          sorted.map((f) => [
            String(f.category || "—"),
            h("code", {}, String(f.code || "")),
            riskBadge(f.severity),
            sourceText(f.source),
            h("span", { class: "value" }, String(f.value ?? "")),
            f.detail ? String(f.detail) : "",
          ]), { id: "findings-table" }),
      ],
      h("p", { class: "muted" }, "Values are masked by the analysis unless the daemon was configured to show them."));
  }

  const REMEDIATION_STATUS = {
    "simulated": "simulated (nothing changed)",
    "applied": "done on the platform",
    "not-needed": "not needed",
    "pending": "waiting",
    "already-done": "done earlier",
    "uncertain": "uncertain: an interrupted attempt; check on the platform",
    "failed": "failed",
    "not-applicable": "not applicable",
  };

  /// One file: what it is, its risk and why, and what remediation did and can do about it.
  async function renderFile(integration, remoteId) {
    const f = await api("GET", `/api/files/${encodeURIComponent(integration)}/${encodeURIComponent(remoteId)}`);
    const r = f.result;
    const report = (r && r.report) || {};
    const rem = f.remediation;
    const modeText = {
      none: `No remediation policy: ProofPix reports this file and changes nothing on ${f.platform || "the platform"}.`,
      simulate: "The policy runs in simulation: each action is reported and audited, nothing changes.",
      act: `The policy acts on ${f.platform || "the platform"}.`,
    }[rem.mode];
    const admin = can("admin");
    const platform = f.platform || "the platform";
    const fileLabel = f.name || f.remote_id;
    const outcome = app.fileAction && app.fileAction.integration === integration && app.fileAction.remoteId === remoteId
      ? app.fileAction : null;
    app.fileAction = null;
    // Runs one action on this file: a simulation at once; the real thing after a confirmation
    // that names the file, the platform and the action. Then the page is read again (history).
    const run = (a, simulate) => async (e) => {
      const button = e.currentTarget;
      await act(button, async () => {
        if (!simulate && !await confirmDialog("Apply on the platform",
          `ProofPix will do this on ${platform} now, for ${fileLabel}: ${actionLabel(a.action)}. It is done once for this version of the file and recorded in the audit trail. Simulate first to see what it would do.`,
          "Apply for real", true)) return;
        const r = await api("POST", `/api/integrations/${encodeURIComponent(integration)}/remediation/actions`,
          { file: remoteId, action: a.action, simulate });
        app.fileAction = { integration, remoteId, result: r };
        await renderFile(integration, remoteId);
        const box = $("#file-action-result");
        if (box) box.focus();
        announce(`${actionLabel(r.action)}: ${REMEDIATION_STATUS[r.status] || r.status}`);
      });
    };
    const actionRows = rem.actions.map((a) => [
      h("span", { "data-file-action": a.action, "data-offered": a.offered ? "yes" : "no" }, actionLabel(a.action)),
      a.offered ? (a.in_policy ? "enabled in the policy" : h("span", { class: "muted" }, "not in the policy"))
        : h("span", { class: "text-error why-not" }, `Not offered for this file: ${a.why_not}`),
      a.last ? h("span", {}, REMEDIATION_STATUS[a.last.status] || a.last.status, " ", timeEl(a.last.time),
        a.last.detail ? h("span", { class: "muted small outcome-error" }, readableText(a.last.detail)) : null)
        : h("span", { class: "muted" }, "nothing recorded"),
      admin ? (a.offered && r && f.status !== "removed"
        ? h("span", { class: "run-actions" },
          h("button", { type: "button", class: "button", "data-simulate": a.action, "data-focus": `simulate-${a.action}`,
            "aria-label": `Simulate: ${actionLabel(a.action)}`, on: { click: run(a, true) } }, "Simulate"),
          h("button", { type: "button", class: "button danger", "data-apply": a.action, "data-focus": `apply-${a.action}`,
            "aria-label": `Apply: ${actionLabel(a.action)}`, on: { click: run(a, false) } }, "Apply…"))
        : h("span", { class: "muted" }, "—")) : null,
    ].filter((c) => c !== null));
    const outcomeBox = outcome ? h("div", { class: "card action-result", id: "file-action-result", tabindex: "-1", role: "status",
      "data-status": outcome.result.status, "data-simulate": outcome.result.simulate ? "yes" : "no" },
      h("h3", {}, outcome.result.simulate ? "Simulation: what would happen (nothing changed)" : "What was done"),
      scrollTable(outcome.result.simulate ? "Simulation result" : "Action result", ["Action", "Outcome", "Detail", "Version"], [[
        actionLabel(outcome.result.action),
        REMEDIATION_STATUS[outcome.result.status] || outcome.result.status,
        h("span", {}, readableText(outcome.result.detail || ""),
          outcome.result.tombstone ? h("span", { class: "muted small" }, ` Tombstone: ${outcome.result.tombstone}`) : null),
        h("span", { class: "pre" }, outcome.result.version),
      ]], { id: "file-action-table" })) : null;
    showPage(f.name || f.remote_id, [
      h("p", { class: "back" }, h("a", { href: "#/files", class: "back-files" }, "← Files")),
      h("section", { class: "card", "aria-label": "File summary" },
        h("dl", { class: "facts", id: "file-summary" },
          h("dt", {}, "Name"), h("dd", { class: "filename", id: "file-name" }, f.name || "—"),
          h("dt", {}, `On ${f.platform || "the platform"}`), h("dd", { id: "file-platform-link" },
            platformLink(f.web_url, `Open ${f.name || f.remote_id} in ${f.platform || "the platform"}`, { class: "platform-link" })
              || h("span", { class: "muted" }, "The plugin gave no link to this file.")),
          h("dt", {}, "Platform id"), h("dd", { class: "filename" }, f.remote_id),
          h("dt", {}, "Integration"), h("dd", {}, h("a", { href: `#/integrations/${encodeURIComponent(f.integration)}` }, f.integration),
            f.platform ? h("span", { class: "muted" }, ` · ${f.platform}`) : null),
          h("dt", {}, "Risk"), h("dd", { id: "file-risk" }, r ? [riskBadge(r.risk), ` score ${fmtInt(r.score)}`] : h("span", { class: "muted" }, "not analysed yet")),
          h("dt", {}, "State"), h("dd", {}, f.status),
          h("dt", {}, "Version"), h("dd", { class: "pre" }, f.version || "—"),
          r ? [h("dt", {}, "Analysed"), h("dd", {}, fmtTime(r.created_at))] : null,
          report.format ? [h("dt", {}, "Format"), h("dd", {}, report.format)] : null,
          f.last_error ? [h("dt", {}, "Last error"), h("dd", { class: "text-error" }, f.last_error)] : null,
          report.error ? [h("dt", {}, "Read problem"), h("dd", { class: "text-error" }, report.error)] : null)),
      f.risk_from_pixels ? h("p", { class: "alert", id: "pixel-risk" },
        h("strong", {}, "The risk is in the picture itself. "),
        "What makes this file risky is something the picture shows (text, a code or a face), so a copy without metadata would still show it: replacing it with a sanitised copy is not offered. Quarantine, restricted sharing or a label can act on it.") : null,
      r ? findingsSection(report) : null,
      h("section", { "aria-labelledby": "file-remediation-title", class: "card", id: "file-remediation" },
        h("h2", { id: "file-remediation-title" }, "Remediation"),
        h("p", { id: "file-remediation-mode", "data-mode": rem.mode }, modeText,
          rem.policy ? (rem.policy_applies ? ` It applies to this file (${rem.policy.min_risk} risk or above).`
            : ` It does not apply to this file: it acts from ${rem.policy.min_risk} risk.`) : ""),
        rem.actions.length ? scrollTable("Actions for this file", ["Action", "For this file", "Latest", admin ? "Run" : null].filter(Boolean), actionRows, { id: "file-actions" })
          : h("p", { class: "muted" }, "This plugin offers no remediation action."),
        rem.actions.length ? h("p", { class: "muted small", id: "file-actions-help" }, admin
          ? `Simulate reports what the plugin would do and changes nothing; Apply asks first, then acts on ${platform} once for this version of the file, whatever the policy says. Both are audited under your token.`
          : "Only an admin can simulate or apply these actions.") : null,
        outcomeBox,
        can("admin") ? h("p", {}, h("a", { href: `#/integrations/${encodeURIComponent(f.integration)}` }, "Change the integration's remediation policy")) : null,
        h("h3", {}, "History"),
        rem.history.length ? scrollTable("Remediation history", ["Time", "Action", "Outcome", "Detail"],
          rem.history.map((e) => [fmtTime(e.time), actionLabel(e.action), REMEDIATION_STATUS[e.status] || e.status, readableText(e.detail || "")]), { id: "file-history" })
          : h("p", { class: "muted" }, `No remediation recorded for this file (in the newest ${fmtInt(rem.history_scanned)} audit entries).`)),
    ]);
    app.view = { name: "file" };
  }

  // ----- audit trail ----------------------------------------------------------

  // A time as RFC 3339 (`2026-01-31T09:30:00Z`) or as Rust's `time` crate prints one
  // (`2026-01-31 9:30:00.0 +00:00:00`), alone or inside a sentence.
  const TIME_IN_TEXT = /\b(\d{4}-\d{2}-\d{2})[T ](\d{1,2}:\d{2}:\d{2})(?:\.\d+)?(?: ?(Z|[+-]\d{2}:\d{2})(?::\d{2})?)?/g;

  /// Text with every time in it written for people (the browser's locale), not `+00:00:00`.
  function readableText(text) {
    return String(text).replace(TIME_IN_TEXT, (all, day, clock, zone) => {
      const [hh, mm, ss] = clock.split(":");
      const iso = `${day}T${hh.padStart(2, "0")}:${mm}:${ss}${!zone || zone === "Z" ? "Z" : zone}`;
      const d = new Date(iso);
      return Number.isNaN(d.getTime()) ? all : dateFmt.format(d);
    });
  }

  /// An audit entry's details as `key: value` lines instead of raw JSON (values are text).
  function detailsView(details) {
    if (details === null || details === undefined) return "";
    if (typeof details !== "object" || Array.isArray(details)) return h("span", { class: "details" }, readableText(JSON.stringify(details)));
    const entries = Object.entries(details).filter(([, v]) => v !== null && v !== undefined && v !== "");
    if (!entries.length) return "";
    return h("ul", { class: "details plain-list" }, entries.map(([k, v]) => h("li", {},
      h("span", { class: "muted" }, `${k.replace(/_/g, " ")}: `),
      typeof v === "object" ? readableText(Array.isArray(v) && v.every((x) => typeof x !== "object") ? v.join(", ") : JSON.stringify(v))
        : readableText(v))));
  }

  async function renderAudit() {
    const PAGE = 50;
    const tbody = h("tbody", { role: "rowgroup" });
    const more = h("button", { type: "button", class: "button", id: "audit-more" }, "Older entries");
    let oldest = null;
    const load = async () => {
      const q = oldest === null ? `limit=${PAGE}` : `limit=${PAGE}&from=${Math.max(0, oldest - PAGE)}`;
      let entries = await api("GET", `/api/audit?${q}`);
      if (oldest !== null) entries = entries.filter((e) => e.seq < oldest);
      for (const e of entries) {
        tbody.append(h("tr", { role: "row" },
          h("th", { scope: "row", role: "rowheader" }, fmtInt(e.seq)),
          h("td", { role: "cell", "data-label": "Time" }, fmtTime(e.time)),
          h("td", { role: "cell", "data-label": "Actor" }, e.actor),
          h("td", { role: "cell", "data-label": "Action" }, h("code", { class: "action" }, e.action)),
          h("td", { class: "filename", role: "cell", "data-label": "Target" }, e.target),
          h("td", { role: "cell", "data-label": "Outcome" }, h("span", { class: e.outcome === "ok" ? "" : "text-error" }, e.outcome)),
          h("td", { role: "cell", "data-label": "Details" }, detailsView(e.details))));
      }
      if (entries.length) oldest = entries[entries.length - 1].seq;
      more.hidden = entries.length === 0 || oldest <= 1;
    };
    more.addEventListener("click", () => act(more, load));
    showPage("Audit trail", [
      h("p", { class: "muted" }, "Every change and every sync request, with who made it. Newest first."),
      h("div", { class: "actions" }, h("a", { class: "button", id: "audit-export", download: "proofpix-audit.csv", href: "/api/audit.csv" }, "Export CSV (every entry, oldest first)")),
      h("div", { class: "table-wrap stack", role: "region", "aria-label": "Audit trail", tabindex: "0" },
        h("table", { id: "audit-table", role: "table" },
          h("caption", { class: "visually-hidden" }, "Audit trail"),
          h("thead", { role: "rowgroup" }, h("tr", { role: "row" }, ["#", "Time", "Actor", "Action", "Target", "Outcome", "Details"].map((x) => h("th", { scope: "col", role: "columnheader" }, x)))),
          tbody)),
      h("div", { class: "actions" }, more),
    ]);
    app.view = { name: "audit" };
    await load();
  }

  // ----- settings -----------------------------------------------------------

  async function renderSettings() {
    const [settings, pluginList] = await Promise.all([api("GET", "/api/settings"), plugins()]);
    const admin = can("admin");
    const auto = h("input", { type: "checkbox", id: "auto-sync", checked: settings.auto_sync, disabled: !admin });
    const schedule = h("input", {
      type: "text",
      id: "default-schedule",
      value: settings.default_schedule || "",
      list: "schedule-presets",
      disabled: !admin,
      "aria-describedby": "default-schedule-help",
    });
    const form = h("form", { class: "card", id: "settings-form", "aria-labelledby": "sync-title" },
      h("h2", { id: "sync-title" }, "Scheduling"),
      h("div", { class: "field check" }, auto, h("label", { for: "auto-sync" }, "Auto sync: run scheduled syncs")),
      h("div", { class: "field" },
        h("label", { for: "default-schedule" }, "Default interval or cron"),
        schedule,
        schedulePresets(),
        h("p", { class: "help", id: "default-schedule-help" },
          "For integrations without their own schedule: an interval from 5 minutes to 24 hours (5m, 15m, 1h, 24h), or cron <expression> [time zone], e.g. cron 0 2 * * * Europe/Paris. Empty: only integrations with their own schedule run.")),
      h("h3", {}, "Set in the configuration file"),
      h("p", { class: "help" }, "These come from proofpix.toml ([pipeline]) and change only there, followed by a restart."),
      h("dl", { class: "facts" },
        h("dt", {}, "Concurrency (files analysed at once per run)"), h("dd", { id: "setting-concurrency" }, fmtInt(settings.concurrency)),
        h("dt", {}, "Parallel runs (integrations syncing at once)"), h("dd", { id: "setting-max-parallel-runs" }, fmtInt(settings.max_parallel_runs))),
      admin ? h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Save settings"))
        : h("p", { class: "muted" }, "Only an admin can change settings."));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act(form.querySelector("button[type=submit]"), async () => {
        await api("PUT", "/api/settings", { auto_sync: auto.checked, default_schedule: schedule.value.trim() || null });
        toast("Settings saved.");
      });
    });
    showPage("Settings", [
      form,
      h("section", { "aria-labelledby": "notify-title", class: "card" },
        h("h2", { id: "notify-title" }, "Notifications"),
        h("p", {}, "Notification types (high-risk files, completed runs, failed runs, unhealthy integrations), the lowest risk that alerts and digests are set on each notifier integration (Slack, Teams...): edit one from its page."),
      ),
      h("section", { "aria-labelledby": "plugins-title" },
        h("h2", { id: "plugins-title" }, "Plugins"),
        h("ul", { class: "cards" }, pluginList.map(pluginCard))),
      admin ? tokensSection() : null,
    ]);
    app.view = { name: "settings" };
  }

  function schedulePresets() {
    return h("datalist", { id: "schedule-presets" },
      ["5m", "15m", "30m", "1h", "2h", "6h", "12h", "24h", "cron 0 2 * * * UTC"].map((v) => h("option", { value: v })));
  }

  function pluginCard(p) {
    return h("li", { class: "card plugin" },
      h("h3", {}, p.display_name),
      h("p", { class: "muted" }, `${p.id} ${p.version} · ${p.platform}`),
      h("p", {}, p.description),
      h("dl", { class: "facts" },
        h("dt", {}, "Does"), h("dd", {}, p.capabilities.join(", ")),
        h("dt", {}, "Sign-in"), h("dd", {}, p.auth),
        p.write_back_batch_size ? [h("dt", {}, "Write-back batch size"), h("dd", {}, `${fmtInt(p.write_back_batch_size)} (declared by the plugin)`)] : null,
        h("dt", {}, "Reaches"), h("dd", { class: "pre" }, p.endpoints.length ? p.endpoints.map((e) => e.url).join("\n") : "local files only"),
        h("dt", {}, "Contract"), h("dd", {}, p.contract_version)),
      can("admin") ? h("div", { class: "actions" }, h("a", { class: "button", href: `#/new/${encodeURIComponent(p.id)}` }, `Set up ${p.display_name}`)) : null);
  }

  function tokensSection() {
    const box = h("div", {});
    const name = h("input", { id: "token-name", type: "text", required: true, pattern: "[A-Za-z0-9_\\-]{1,64}", "aria-describedby": "token-name-help" });
    const role = h("select", { id: "token-role" }, ["viewer", "operator", "admin"].map((r) => h("option", { value: r }, r)));
    const form = h("form", { class: "inline-form" },
      h("div", { class: "field" }, h("label", { for: "token-name" }, "Name"), name,
        h("p", { class: "help", id: "token-name-help" }, "Letters, digits, - and _.")),
      h("div", { class: "field" }, h("label", { for: "token-role" }, "Role"), role),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Create token")));
    const load = async () => {
      const tokens = await api("GET", "/api/tokens");
      clear(box);
      append(box, [scrollTable("Every API token", ["Name", "Role", "Created by", "Created", "Action"], tokens.map((t) => [
        t.name, t.role, t.created_by, fmtTime(t.created_at),
        h("button", {
          type: "button",
          class: "button danger",
          on: {
            click: (ev) => act(ev.currentTarget, async () => {
              if (!(await confirmDialog(`Revoke ${t.name}?`, "Anything using this token stops working at once.", "Revoke", true))) return;
              await api("DELETE", `/api/tokens/${encodeURIComponent(t.name)}`);
              await load();
            }),
          },
        }, "Revoke", h("span", { class: "visually-hidden" }, ` ${t.name}`)),
      ]))]);
    };
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      act(form.querySelector("button[type=submit]"), async () => {
        const created = await api("POST", "/api/tokens", { name: name.value.trim(), role: role.value });
        name.value = "";
        await load();
        await openDialog("Token created", h("div", {},
          h("p", {}, `Token ${created.name} (${created.role}). It is shown only now: store it.`),
          h("p", {}, h("code", { class: "token-value", tabindex: "0" }, created.token))), [
          h("button", { type: "button", class: "button primary", autofocus: true, on: { click: () => closeDialog(true) } }, "I stored it"),
        ]);
      });
    });
    load().catch((e) => append(clear(box), [errorBox(e)]));
    return h("section", { "aria-labelledby": "tokens-title", class: "card" },
      h("h2", { id: "tokens-title" }, "API tokens"), box, h("h3", {}, "New token"), form);
  }

  // ----- setup and edit -------------------------------------------------------

  async function renderPluginPicker() {
    const list = await plugins();
    showPage("Add an integration", [
      backLink("#/", "All integrations"),
      h("p", {}, "Choose the system to connect. The next page asks for its settings, then tests the connection before you activate it."),
      h("ul", { class: "cards" }, list.map((p) => h("li", { class: "card plugin" },
        h("h2", { class: "h3" }, h("a", { href: `#/new/${encodeURIComponent(p.id)}` }, p.display_name)),
        h("p", { class: "muted" }, `${p.platform} · ${p.capabilities.join(", ")}`),
        h("p", {}, p.description)))),
    ]);
    app.view = { name: "picker" };
  }

  const lines = (text) => text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);

  /// One input for a plugin config field, chosen by its kind.
  function fieldInput(f, value, { editing, secretSet }) {
    const id = `cfg-${f.name}`;
    const describedBy = f.help ? `${id}-help` : null;
    const common = { id, name: f.name, "aria-describedby": describedBy, "data-field": f.name, "data-kind": f.kind };
    let input;
    switch (f.kind) {
      case "multiline":
      case "string-list":
        input = h("textarea", { ...common, rows: f.kind === "string-list" ? 3 : 4, placeholder: f.placeholder || (f.kind === "string-list" ? "one per line" : null) });
        input.value = f.kind === "string-list" ? lines(value || "").join("\n") : value || "";
        break;
      case "boolean":
        input = h("input", { ...common, type: "checkbox", checked: /^(true|yes|1|on)$/i.test(value || "") });
        break;
      case "choice":
        input = h("select", common,
          f.required ? null : h("option", { value: "" }, "(not set)"),
          f.choices.map((c) => h("option", { value: c, selected: c === value }, c)));
        break;
      case "integer":
        input = h("input", { ...common, type: "number", step: "1", inputmode: "numeric", placeholder: f.placeholder, value: value || "" });
        break;
      default: {
        const type = f.secret ? "password" : { url: "url", email: "email" }[f.kind] || "text";
        input = h("input", {
          ...common,
          type,
          placeholder: f.secret && secretSet ? "set: leave blank to keep" : f.placeholder,
          autocomplete: f.secret ? "new-password" : "off",
          spellcheck: "false",
          // Secrets are write-only: never pre-filled, not even in edit mode.
          value: f.secret ? "" : value || "",
        });
      }
    }
    if (f.required && !(f.secret && editing && secretSet) && f.kind !== "boolean") input.required = true;
    const label = h("label", { for: id }, f.label || f.name, f.required ? h("span", { class: "req", "aria-hidden": "true" }, " *") : null,
      f.secret ? h("span", { class: "badge" }, "secret") : null);
    const help = f.help ? h("p", { class: "help", id: `${id}-help` }, f.help, f.secret && secretSet ? " A value is stored; type a new one to replace it." : "") : null;
    return f.kind === "boolean"
      ? h("div", { class: "field check" }, input, label, help)
      : h("div", { class: "field" }, label, input, help);
  }

  function fieldValue(f, form) {
    const el = form.querySelector(`[data-field="${CSS.escape(f.name)}"]`);
    if (!el) return "";
    if (f.kind === "boolean") return el.checked ? "true" : "false";
    if (f.kind === "string-list") return lines(el.value).join("\n");
    return el.value.trim();
  }

  function textareaField(id, label, help, value) {
    const t = h("textarea", { id, rows: 2, "aria-describedby": `${id}-help`, spellcheck: "false" });
    t.value = (value || []).join("\n");
    return h("div", { class: "field" }, h("label", { for: id }, label), t, h("p", { class: "help", id: `${id}-help` }, help));
  }

  function checkField(id, label, checked, help) {
    return h("div", { class: "field check" },
      h("input", { type: "checkbox", id, checked, "aria-describedby": help ? `${id}-help` : null }),
      h("label", { for: id }, label),
      help ? h("p", { class: "help", id: `${id}-help` }, help) : null);
  }

  const EVENTS = [
    ["high-risk", "High-risk files"],
    ["batch-completed", "Completed runs"],
    ["batch-failed", "Failed runs"],
    ["unhealthy", "Unhealthy integrations"],
  ];

  /// The notifier part of the form. For a plugin that is also a source
  /// (Slack), notifications are opt-in behind a checkbox.
  function subscriptionFields(sub, sources, optional) {
    const s = sub || { sources: ["*"], events: EVENTS.map(([e]) => e), min_risk: "high", digest: false, dashboard_url: null };
    const all = (s.sources || []).includes("*");
    const options = h("fieldset", { class: "plain", id: "notify-options", disabled: optional && !sub },
      h("legend", { class: "visually-hidden" }, "Notification settings"),
      h("fieldset", { class: "plain" },
        h("legend", {}, "Notify about"),
        EVENTS.map(([e, label]) => h("div", { class: "field check" },
          h("input", { type: "checkbox", id: `event-${e}`, "data-event": e, checked: (s.events || []).includes(e) }),
          h("label", { for: `event-${e}` }, label)))),
      h("div", { class: "field" },
        h("label", { for: "min-risk" }, "Lowest file risk that alerts"),
        h("select", { id: "min-risk" }, ["medium", "high", "critical"].map((r) => h("option", { value: r, selected: r === s.min_risk }, r)))),
      checkField("digest", "Digest: one message per run instead of one per file", !!s.digest),
      h("fieldset", { class: "plain" },
        h("legend", {}, "From these sources"),
        h("div", { class: "field check" }, h("input", { type: "checkbox", id: "source-all", checked: all }), h("label", { for: "source-all" }, "All sources")),
        sources.map((src) => h("div", { class: "field check" },
          h("input", { type: "checkbox", id: `source-${src}`, "data-source": src, checked: !all && (s.sources || []).includes(src) }),
          h("label", { for: `source-${src}` }, src)))),
      h("div", { class: "field" },
        h("label", { for: "dashboard-url" }, "Dashboard link in messages"),
        h("input", { type: "url", id: "dashboard-url", value: s.dashboard_url || `${location.origin}/` })));
    const toggle = optional ? h("input", {
      type: "checkbox",
      id: "notify-enabled",
      checked: !!sub,
      "aria-controls": "notify-options",
      on: { change: (ev) => { options.disabled = !ev.currentTarget.checked; } },
    }) : null;
    return h("fieldset", { class: "card" },
      h("legend", {}, "Notification types"),
      optional ? h("div", { class: "field check" }, toggle, h("label", { for: "notify-enabled" }, "Send notifications through this integration")) : null,
      options);
  }

  function readSubscriptions(form) {
    const events = [...form.querySelectorAll("[data-event]")].filter((c) => c.checked).map((c) => c.getAttribute("data-event"));
    const picked = [...form.querySelectorAll("[data-source]")].filter((c) => c.checked).map((c) => c.getAttribute("data-source"));
    const all = $("#source-all", form).checked || picked.length === 0;
    const url = $("#dashboard-url", form).value.trim();
    return {
      sources: all ? ["*"] : picked,
      events,
      min_risk: $("#min-risk", form).value,
      digest: $("#digest", form).checked,
      dashboard_url: url || null,
    };
  }

  /// The setup form, generated from the plugin's config schema. In create
  /// mode it creates the integration paused, runs the connection test and
  /// lets the operator activate it or delete it; in edit mode it PATCHes.
  async function renderSetup({ pluginId = null, editId = null }) {
    if (!can("admin")) {
      showPage("Not allowed", [h("p", {}, "Only an admin can add or edit integrations."), backLink("#/", "All integrations")]);
      return;
    }
    const editing = editId !== null;
    const current = editing ? await api("GET", `/api/integrations/${encodeURIComponent(editId)}`) : null;
    const list = await plugins();
    const plugin = list.find((p) => p.id === (editing ? current.plugin : pluginId));
    if (!plugin) {
      showPage("Unknown plugin", [h("p", {}, "This daemon has no such plugin."), backLink("#/new", "Choose a plugin")]);
      return;
    }
    const canNotify = plugin.capabilities.includes("notifier");
    const canSource = plugin.capabilities.includes("source");
    const sources = canNotify ? (await api("GET", "/api/integrations")).filter(isSource).map((i) => i.id).filter((x) => x !== editId) : [];
    const values = editing ? current.config : Object.fromEntries(plugin.config.map((f) => [f.name, f.default || ""]));
    const secretsSet = new Set(editing ? current.secrets_set : []);
    const grant = editing ? current.grant : suggestedGrant(plugin);

    const idInput = h("input", {
      id: "integration-id",
      type: "text",
      required: true,
      pattern: "[a-z0-9][a-z0-9\\-]{0,62}",
      value: editing ? current.id : "",
      disabled: editing,
      "aria-describedby": "integration-id-help",
      spellcheck: "false",
    });
    const scheduleInput = h("input", {
      id: "schedule",
      type: "text",
      list: "schedule-presets",
      value: editing ? current.schedule || "" : "",
      "aria-describedby": "schedule-help",
      spellcheck: "false",
    });
    const errors = h("div", { id: "form-errors" });
    const result = h("div", { id: "setup-result" });
    const submit = h("button", { type: "submit", class: "button primary" }, editing ? "Save changes" : "Create and test connection");
    const form = h("form", { id: "setup-form" },
      h("div", { class: "card" },
        h("div", { class: "field" },
          h("label", { for: "integration-id" }, "Integration name", h("span", { class: "req", "aria-hidden": "true" }, " *")),
          idInput,
          h("p", { class: "help", id: "integration-id-help" }, editing ? "The name cannot change." : "Lowercase letters, digits and -, e.g. sales-files.")),
        plugin.config.length ? h("fieldset", { class: "plain" },
          h("legend", {}, `${plugin.display_name} settings`),
          plugin.config.map((f) => fieldInput(f, values[f.name], { editing, secretSet: secretsSet.has(f.name) }))) : null),
      h("fieldset", { class: "card" },
        h("legend", {}, "What it may reach (the grant)"),
        h("p", { class: "help" }, "The plugin declares what it needs; it gets only what you grant here as well."),
        plugin.endpoints.length ? h("p", { class: "help" }, "Declared endpoints: ", plugin.endpoints.map((e) => e.url).join(", ")) : null,
        textareaField("grant-hosts", "Allowed hosts", "One per line, e.g. https://example.my.salesforce.com or https://*.sharepoint.com.", grant.hosts),
        textareaField("grant-mounts", "Mounts", "Folders the plugin may read, one per line (the local-folder plugin reads /input).", grant.mounts),
        textareaField("grant-write", "Writable mounts", "Folders the plugin may write to, one per line (usually none).", grant.write),
        checkField("grant-loopback", "Allow loopback addresses (127.0.0.1, ::1)", !!grant.allow_loopback, "Only for emulators and tests."),
        checkField("grant-private", "Allow private network addresses (10.x, 192.168.x...)", !!grant.allow_private, "For systems hosted on your own network.")),
      canNotify ? subscriptionFields(editing ? current.subscriptions : null, sources, canSource) : null,
      !canSource ? null : h("fieldset", { class: "card" },
          h("legend", {}, "Schedule"),
          h("div", { class: "field" },
            h("label", { for: "schedule" }, "Sync interval or cron"),
            scheduleInput,
            schedulePresets(),
            h("p", { class: "help", id: "schedule-help" }, "An interval from 5 minutes to 24 hours (5m, 15m, 1h, 24h), or cron <expression> [time zone]. Empty: the default schedule from Settings."))),
      !canSource ? null : h("fieldset", { class: "card" },
          h("legend", {}, "Pixel stage"),
          checkField("pixels", "Read the pictures too: QR codes and personal data in text (OCR)", editing ? !!current.pixels : false,
            "Off by default. Each file is read whole and looked at, so syncs are much slower. Files already analysed are looked at again only by a sync that re-analyses.")),
      errors,
      h("div", { class: "actions" },
        submit,
        h("a", { class: "button", href: editing ? `#/integrations/${encodeURIComponent(editId)}` : "#/new" }, "Cancel")),
      result);

    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      clear(errors);
      if (!form.reportValidity()) return;
      const config = {};
      const secrets = {};
      for (const f of plugin.config) {
        const v = fieldValue(f, form);
        if (f.secret) {
          if (v) secrets[f.name] = v;
        } else if (v !== "") {
          config[f.name] = v;
        }
      }
      const body = {
        config,
        secrets,
        grant: {
          hosts: lines($("#grant-hosts", form).value),
          mounts: lines($("#grant-mounts", form).value),
          write: lines($("#grant-write", form).value),
          allow_loopback: $("#grant-loopback", form).checked,
          allow_private: $("#grant-private", form).checked,
        },
      };
      const notify = canNotify && (!canSource || $("#notify-enabled", form).checked);
      if (notify) body.subscriptions = readSubscriptions(form);
      if (canSource) {
        body.schedule = scheduleInput.value.trim();
        body.pixels = $("#pixels", form).checked;
      }
      act(submit, async () => {
        try {
          if (editing) {
            await api("PATCH", `/api/integrations/${encodeURIComponent(editId)}`, body);
            toast(`${editId} saved.`);
            location.hash = `#/integrations/${encodeURIComponent(editId)}`;
          } else {
            await createAndTest(idInput.value.trim(), plugin, body, result, form);
          }
        } catch (e) {
          append(clear(errors), [errorBox(e)]);
          errors.querySelector("[role=alert]").setAttribute("tabindex", "-1");
          errors.querySelector("[role=alert]").focus();
        }
      });
    });

    showPage(editing ? `Edit ${current.id}` : `Set up ${plugin.display_name}`, [
      backLink(editing ? `#/integrations/${encodeURIComponent(editId)}` : "#/new", editing ? current.id : "Choose another plugin"),
      h("p", { class: "muted" }, plugin.description),
      form,
    ]);
    app.view = { name: "setup" };
  }

  /// The grant to start from: the hosts of the plugin's declared endpoints and
  /// of its authentication (token, authorize) URLs, where a `{config.NAME}`
  /// placeholder takes that field's default, and the mounts of required folders.
  /// Hosts are cut from the text, not parsed with URL(), which would write the
  /// wildcard of `https://*.sharepoint.com` as `%2A`.
  function suggestedGrant(plugin) {
    const defaults = Object.fromEntries(plugin.config.map((f) => [f.name, f.default || ""]));
    const hosts = [];
    const urls = [...plugin.endpoints.map((e) => e.url), ...(plugin.auth_urls || [])];
    for (const template of urls) {
      const url = template.replace(/\{config\.([A-Za-z0-9_]+)\}/g, (_, name) => defaults[name] || "{}");
      const m = /^(https?):\/\/([^/?#{}\s@]+)(?=$|[/?#])/i.exec(url);
      if (!m) continue; // Depends on a value the operator types, or not a URL.
      hosts.push(`${m[1].toLowerCase()}://${m[2].toLowerCase()}`);
    }
    return {
      hosts: [...new Set(hosts)],
      // A mount whose folder field is optional is granted when the operator fills it in.
      mounts: (plugin.mounts || [])
        .filter((m) => plugin.config.some((f) => f.name === m.config_field && f.required))
        .map((m) => m.guest_path),
      write: [],
      allow_loopback: false,
      allow_private: false,
    };
  }

  async function createAndTest(id, plugin, body, resultBox, form) {
    const payload = { id, plugin: plugin.id, ...body };
    if (!payload.schedule) delete payload.schedule;
    let refused = null;
    try {
      await api("POST", "/api/integrations", payload);
    } catch (e) {
      if (e.status === 401 || e.status === 409 || e.status === 422) throw e;
      // The daemon stores an integration before its plugin checks the
      // settings, so a refusal by the plugin can leave it stored: then it is
      // shown like a failed test, with the same keep-or-delete choice.
      try {
        await api("GET", `/api/integrations/${encodeURIComponent(id)}`);
      } catch (notStored) {
        throw e;
      }
      refused = e.message;
    }
    // Paused until the operator has seen the test pass: nothing syncs with
    // settings nobody has checked.
    await api("POST", `/api/integrations/${encodeURIComponent(id)}/disable`);
    clear(resultBox);
    append(resultBox, [h("p", { class: "muted", role: "status" }, "Created (paused). Testing the connection…")]);
    const test = await api("POST", `/api/integrations/${encodeURIComponent(id)}/test`);
    if (refused !== null) {
      test.ok = false;
      test.steps.unshift({ name: "plugin's check of the settings", ok: false, detail: refused });
    }
    // The form now describes a stored integration: no second create from it
    // until the operator deletes that one. (Hidden, not disabled: `act`
    // enables its button again when this returns.)
    const submit = form.querySelector("button[type=submit]");
    submit.hidden = true;
    for (const el of form.querySelectorAll("input, select, textarea")) el.disabled = true;
    const activate = h("button", {
      type: "button",
      class: "button primary",
      id: "activate",
      on: {
        click: (ev) => act(ev.currentTarget, async () => {
          await api("POST", `/api/integrations/${encodeURIComponent(id)}/enable`);
          toast(`${id} is active.`);
          location.hash = `#/integrations/${encodeURIComponent(id)}`;
        }),
      },
    }, test.ok ? "Keep and activate" : "Keep and activate anyway");
    const discard = h("button", {
      type: "button",
      class: "button danger",
      id: "discard",
      on: {
        click: (ev) => act(ev.currentTarget, async () => {
          await api("DELETE", `/api/integrations/${encodeURIComponent(id)}`);
          clear(resultBox);
          for (const el of form.querySelectorAll("input, select, textarea")) el.disabled = false;
          submit.hidden = false;
          toast(`${id} deleted; fix the settings and try again.`);
          form.querySelector("input, select, textarea").focus();
        }),
      },
    }, "Delete and edit the settings");
    clear(resultBox);
    append(resultBox, [h("section", { class: "card", "aria-labelledby": "test-title" },
      h("h2", { id: "test-title", tabindex: "-1" }, "Connection test"),
      testSteps(test),
      h("p", {}, test.ok ? `${id} is created and paused. Activate it to start syncing.` : `${id} is created and paused. Fix the settings (delete it and try again), or keep it to fix later.`),
      h("div", { class: "actions" }, activate, discard))]);
    $("#test-title", resultBox).focus();
    announce(test.ok ? "The connection test passed." : "The connection test failed.");
  }

  // ----- start ----------------------------------------------------------------

  async function start() {
    applyTheme();
    systemDark.addEventListener("change", applyTheme);
    $("#theme-toggle").addEventListener("click", toggleTheme);
    $("#sign-out").addEventListener("click", signOut);
    $(".skip-link").addEventListener("click", (ev) => {
      ev.preventDefault();
      main().focus();
    });
    $("#dialog-close").addEventListener("click", () => closeDialog(false));
    // Escape (the dialog's `cancel`) and any other close settle the promise.
    $("#dialog").addEventListener("close", () => finishDialog(false));
    window.addEventListener("hashchange", () => {
      app.focusHeading = true;
      render();
    });
    // Relative times ("3 minutes ago") stay true without a reload.
    setInterval(() => {
      for (const t of document.querySelectorAll("time[datetime]")) {
        const rel = relTime(t.getAttribute("datetime"));
        if (rel) t.textContent = rel;
      }
    }, 30000);
    try {
      const session = await api("GET", "/api/session");
      signedIn(session);
    } catch (e) {
      renderSignIn(e instanceof ApiFailure && e.status === 401 ? null : e.message);
    }
  }

  start();
})();
