// Live updates for the status page: WebSocket, else server-sent events, else snapshot polling.
// The page is complete without this script; with it, statuses change in place as they change.
(() => {
  "use strict";

  const root = document.documentElement;
  const strings = JSON.parse(document.getElementById("statuspage-strings")?.textContent || "{}");
  const SEVERITY = {
    major_outage: 5,
    partial_outage: 4,
    degraded_performance: 3,
    under_maintenance: 2,
    unknown: 1,
    operational: 0,
  };
  const TONES = {
    minor: "degraded_performance",
    major: "partial_outage",
    critical: "major_outage",
    maintenance: "under_maintenance",
  };
  const POLL_MS = 10_000;
  // Statuses are marked stale once the connection has been lost for longer than one probe interval:
  // by then the page may be missing a change.
  const STALE_AFTER_MS = Math.max(5, Number(root.dataset.probeInterval) || 30) * 1000;
  const HEARTBEAT_TIMEOUT_MS = 45_000;
  const CONNECT_TIMEOUT_MS = 10_000;
  const BACKOFF_BASE_MS = 1_000;
  const BACKOFF_MAX_MS = 30_000;
  const PUSH_RETRY_MAX_MS = 300_000;
  const FIGURES_EVERY_MS = 60_000;
  const OLD_PAGE_MS = 90_000;

  const state = {
    version: root.dataset.snapshotVersion || "0.0",
    seq: Number(root.dataset.sequence || 0),
    changedAt: new Map(), // model slug -> the seq of the last status change applied to it
    etag: null,
    transport: null, // "ws", "sse" or "poll"
    connected: false,
    lastFresh: Date.now(),
    graceUntil: Date.now() + STALE_AFTER_MS,
    attempts: 0,
    pushFailures: 0,
    socket: null,
    stream: null,
    polling: false,
    pollTimer: null,
    pollFailures: 0,
    retryTimer: null,
    pushRetryTimer: null,
    watchdog: null,
    figuresAt: Date.now(),
    syncing: null,
  };

  // --- Versions ------------------------------------------------------------------------------------------------

  function parseVersion(version) {
    const [sequence, built] = String(version || "0.0").split(".");
    return [Number(sequence) || 0, Number(built) || 0];
  }

  function isNewer(candidate, than) {
    const [a, at] = parseVersion(candidate);
    const [b, bt] = parseVersion(than);
    return a > b || (a === b && at > bt);
  }

  // --- The connection indicator -------------------------------------------------------------------------------

  // How long ago, in the page's language ("2 minutes ago", "2분 전", "2 分前").
  function formatAgo(moment) {
    const seconds = Math.max(0, Math.round((Date.now() - moment) / 1000));
    const [value, unit] =
      seconds < 60 ? [seconds, "second"] : seconds < 3600 ? [Math.floor(seconds / 60), "minute"] : [Math.floor(seconds / 3600), "hour"];
    try {
      return new Intl.RelativeTimeFormat(root.lang || undefined, { numeric: "always" }).format(-value, unit);
    } catch {
      return `${value} ${unit}s ago`;
    }
  }

  function updateIndicator() {
    const element = document.getElementById("connection");
    if (!element) return;
    const now = Date.now();
    let kind;
    let text;
    const texts = strings.connection || {};
    if (state.connected) {
      kind = "live";
      text = state.transport === "poll" ? texts.polling : texts.live;
    } else if (now < state.graceUntil || now - state.lastFresh < STALE_AFTER_MS) {
      kind = "reconnecting";
      text = texts.reconnecting;
    } else {
      kind = "stale";
      text = (texts.stale || "{ago}").replace("{ago}", formatAgo(state.lastFresh));
    }
    // Greyed statuses while stale; the mark clears as soon as the page has caught up.
    if (kind === "stale") root.dataset.stale = "true";
    else delete root.dataset.stale;
    element.dataset.transport = state.transport || "";
    if (element.dataset.connection === kind && element.dataset.text === text) return;
    element.dataset.connection = kind;
    element.dataset.text = text;
    const label = element.querySelector(".connection-text");
    if (label) label.textContent = text;
  }

  function markFresh() {
    state.connected = true;
    state.lastFresh = Date.now();
    updateIndicator();
  }

  function markDisconnected() {
    state.connected = false;
    updateIndicator();
  }

  // --- Painting statuses -------------------------------------------------------------------------------------

  function known(status) {
    // Anything this page does not know is shown as unknown: never as operational.
    return Object.hasOwn(SEVERITY, status) ? status : "unknown";
  }

  function paintStatus(element, status) {
    if (!element) return;
    element.dataset.status = status;
    element.querySelector("use")?.setAttribute("href", `#i-${status}`);
    const label = element.querySelector(".status-label");
    if (label) label.textContent = strings.status?.[status] ?? status;
  }

  function flash(element) {
    element.classList.remove("changed");
    void element.offsetWidth; // restart the animation
    element.classList.add("changed");
    setTimeout(() => element.classList.remove("changed"), 2000);
  }

  function announce(text) {
    let region = document.getElementById("status-announcer");
    if (!region) {
      region = document.createElement("div");
      region.id = "status-announcer";
      region.className = "visually-hidden";
      region.setAttribute("aria-live", "polite");
      document.body.append(region);
    }
    region.textContent = text;
  }

  function setStatus(slug, status) {
    status = known(status);
    let changed = false;
    for (const row of document.querySelectorAll(`[data-model="${CSS.escape(slug)}"]`)) {
      const before = row.dataset.status;
      if (before === status) continue;
      row.dataset.status = status;
      paintStatus(row.querySelector(".model-status .status"), status);
      flash(row);
      changed = true;
      const name = row.querySelector(".model-name a, h1")?.textContent?.trim() || slug;
      if (strings.changed) {
        announce(
          strings.changed
            .replace("{model}", name)
            .replace("{from}", strings.status?.[before] ?? before)
            .replace("{to}", strings.status?.[status] ?? status),
        );
      }
    }
    return changed;
  }

  // The "unusual" note beside a model's status: an open anomaly, never a status of its own.
  function setUnusual(slug, unusual) {
    for (const note of document.querySelectorAll(`[data-model="${CSS.escape(slug)}"] .model-status .unusual`)) {
      if (note.hidden === !unusual) continue;
      note.hidden = !unusual;
      if (!unusual) note.querySelector(".unusual-what")?.remove();
    }
  }

  function worst(statuses) {
    if (statuses.every((s) => s === "unknown")) return "unknown";
    return statuses.reduce((a, b) => (SEVERITY[b] > SEVERITY[a] ? b : a));
  }

  function pageIndicator(counts, total) {
    // The snapshot's rule: unknown models are counted apart, never as up.
    const known = total - (counts.unknown || 0);
    const major = counts.major_outage || 0;
    if (major && 2 * major >= known) return "critical";
    if (major) return "major";
    if (counts.partial_outage || counts.degraded_performance) return "minor";
    if (counts.under_maintenance) return "maintenance";
    return "none";
  }

  function recompute() {
    for (const section of document.querySelectorAll(".provider")) {
      const statuses = [...section.querySelectorAll(".model[data-model]")].map((row) => row.dataset.status);
      if (statuses.length) paintStatus(section.querySelector(".provider-status .status"), worst(statuses));
    }
    const banner = document.getElementById("banner");
    if (!banner) return;
    const rows = [...document.querySelectorAll(".provider .model[data-model]")];
    const counts = {};
    for (const row of rows) counts[row.dataset.status] = (counts[row.dataset.status] || 0) + 1;
    const total = rows.length;
    const unknown = counts.unknown || 0;
    const indicator = pageIndicator(counts, total);
    const tone = indicator === "none" ? (total && !unknown ? "operational" : "unknown") : TONES[indicator];
    const headlines = strings.headline || {};
    let headline;
    if (!total) headline = headlines.empty;
    else if (indicator !== "none") headline = headlines[indicator];
    else if (!unknown) headline = headlines.none;
    else if (unknown === total) headline = headlines.none_all_unknown;
    else headline = headlines.none_some_unknown;

    const before = `${banner.dataset.tone}|${banner.dataset.indicator}`;
    banner.dataset.tone = tone;
    banner.dataset.indicator = indicator;
    banner.querySelector(".banner-icon use")?.setAttribute("href", `#i-${tone}`);
    const title = banner.querySelector(".banner-headline");
    if (title && headline) title.textContent = headline;
    const sentence = banner.querySelector(".banner-unknown");
    if (sentence) {
      const forms = strings.unknown_sentence || ["", ""];
      sentence.hidden = !unknown;
      sentence.textContent = unknown
        ? forms[unknown === 1 ? 0 : 1].replace("{n}", unknown).replace("{m}", total)
        : "";
    }
    for (const item of banner.querySelectorAll("[data-count-status]")) {
      const n = counts[item.dataset.countStatus] || 0;
      item.hidden = !n;
      const count = item.querySelector(".count");
      if (count) count.textContent = String(n);
    }
    if (before !== `${tone}|${indicator}`) flash(banner);
  }

  // --- Snapshots ------------------------------------------------------------------------------------------------

  function incidentsKey(data) {
    const incidents = (data.incidents || [])
      .filter((incident) => incident.state !== "resolved")
      .map((incident) => `i${incident.id}:${incident.state}:${incident.updated_at}`);
    const windows = (data.maintenances || []).map(
      (window) => `m${window.id}:${window.starts_at}:${window.active ? 1 : 0}`,
    );
    return [...incidents, ...windows].join(";");
  }

  function applySnapshot(data) {
    if (!data || !Array.isArray(data.models)) return;
    if (data.version !== state.version && !isNewer(data.version, state.version)) return;
    if (data.version === state.version) return;
    const banner = document.getElementById("banner");
    let structure = false;
    if (banner) {
      const onPage = new Set([...document.querySelectorAll(".provider .model[data-model]")].map((r) => r.dataset.model));
      const inSnapshot = new Set(data.models.map((model) => model.slug));
      structure =
        onPage.size !== inSnapshot.size ||
        [...inSnapshot].some((slug) => !onPage.has(slug)) ||
        (banner.dataset.incidents || "") !== incidentsKey(data);
    }
    for (const model of data.models) {
      // A change that arrived while this snapshot was fetched is newer than what it says of that model.
      if ((state.changedAt.get(model.slug) || 0) > (Number(data.sequence) || 0)) continue;
      setStatus(model.slug, model.status);
    }
    for (const model of data.models) setUnusual(model.slug, Boolean(model.unusual && model.unusual.length));
    state.version = data.version;
    state.seq = Math.max(state.seq, Number(data.sequence) || 0);
    root.dataset.snapshotVersion = data.version;
    root.dataset.sequence = String(data.sequence);
    root.dataset.builtAt = data.built_at;
    recompute();
    const detail = !banner && document.querySelector(".model-detail");
    if (structure || detail || Date.now() - state.figuresAt > FIGURES_EVERY_MS) {
      state.figuresAt = Date.now();
      refreshFromPage(structure || Boolean(detail));
    }
  }

  function syncSnapshot() {
    // One request at a time; callers share its outcome.
    if (state.syncing) return state.syncing;
    state.syncing = (async () => {
      try {
        const response = await fetch("/api/v1/snapshot/", {
          headers: { "If-None-Match": state.etag || `"${state.version}"`, Accept: "application/json" },
          cache: "no-store",
        });
        if (response.status === 304) return true;
        if (!response.ok) return false;
        const data = await response.json();
        state.etag = response.headers.get("ETag");
        applySnapshot(data);
        return true;
      } catch {
        return false;
      } finally {
        root.classList.remove("is-refreshing");
      }
    })();
    state.syncing.finally(() => {
      state.syncing = null;
    });
    return state.syncing;
  }

  // Uptime bars, latency, incidents and new or removed models come from the page itself, rendered for the new
  // version and served from the edge's cache: cheaper than drawing them twice.
  async function refreshFromPage(whole) {
    try {
      const response = await fetch(location.pathname, { cache: "no-store", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = doc.getElementById("main");
      const main = document.getElementById("main");
      const version = doc.documentElement.dataset.snapshotVersion;
      if (!fresh || !main || !version || isNewer(state.version, version)) return;
      if (whole) {
        // Earlier incident updates the reader opened stay open.
        const opened = [...main.querySelectorAll(".incident details[open]")].map((d) => d.closest(".incident").id);
        main.replaceChildren(...[...fresh.childNodes].map((node) => document.adoptNode(node)));
        for (const id of opened) document.getElementById(id)?.querySelector("details")?.setAttribute("open", "");
        state.version = version;
        root.dataset.snapshotVersion = version;
        root.dataset.sequence = doc.documentElement.dataset.sequence;
        state.seq = Math.max(state.seq, Number(doc.documentElement.dataset.sequence) || 0);
      } else {
        for (const row of main.querySelectorAll(".model[data-model]")) {
          const other = fresh.querySelector(`.model[data-model="${CSS.escape(row.dataset.model)}"]`);
          if (!other) continue;
          for (const part of [".model-uptime", ".model-latency"]) {
            const mine = row.querySelector(part);
            const theirs = other.querySelector(part);
            if (mine && theirs) mine.replaceChildren(...[...theirs.childNodes].map((n) => document.adoptNode(n)));
          }
        }
      }
      recompute();
      document.dispatchEvent(new CustomEvent("statuspage:updated", { detail: { root: main } }));
    } catch {
      // The statuses are already right; the figures catch up with the next snapshot.
    }
  }

  // --- Events ---------------------------------------------------------------------------------------------------

  function handle(message) {
    if (!message || typeof message !== "object") return;
    switch (message.type) {
      case "hello":
        if (message.snapshot_version && isNewer(message.snapshot_version, state.version)) syncSnapshot();
        break;
      case "status_change":
        if (typeof message.seq === "number" && message.seq <= state.seq) break;
        if (typeof message.seq === "number") state.seq = message.seq;
        if (message.model && typeof message.seq === "number") state.changedAt.set(message.model, message.seq);
        if (message.model && setStatus(message.model, message.to)) recompute();
        break;
      case "anomaly":
        // Opened: mark it at once. Closed: the snapshot says whether another one is still open.
        if (message.model && message.state === "opened") setUnusual(message.model, true);
        else syncSnapshot();
        break;
      case "snapshot":
        if (message.version && isNewer(message.version, state.version)) syncSnapshot();
        break;
      case "resync":
        syncSnapshot();
        break;
      case "error":
        console.warn("status events:", message.message);
        break;
      case "batch":
        // Several events in one frame (after a burst of changes), in order: each is handled as if alone.
        if (!Array.isArray(message.events)) break;
        for (const inner of message.events) {
          if (inner?.type !== "batch") handle(inner);
        }
        break;
      default:
        break; // heartbeat, and kinds a newer server may add
    }
  }

  function received(message) {
    stopPolling();
    state.attempts = 0;
    state.pushFailures = 0;
    clearTimeout(state.pushRetryTimer);
    markFresh();
    armWatchdog();
    handle(message);
  }

  // --- Transports -----------------------------------------------------------------------------------------------

  function jitter(ms) {
    return ms / 2 + Math.random() * (ms / 2);
  }

  function armWatchdog() {
    clearTimeout(state.watchdog);
    state.watchdog = setTimeout(() => {
      // Nothing heard, not even a heartbeat: the connection is dead even if the socket does not know it yet
      // (and closing a dead socket can take minutes to report), so it is dropped and replaced now.
      const socket = state.socket;
      if (socket) {
        state.socket = null;
        socket.onclose = null;
        socket.close();
        scheduleReconnect(connectWebSocket);
      }
      if (state.stream) state.stream.abort("silent");
    }, HEARTBEAT_TIMEOUT_MS);
  }

  function scheduleReconnect(connect) {
    markDisconnected();
    state.attempts += 1;
    // Several failed reconnections in a row: poll meanwhile (the first pushed message stops it).
    if (state.attempts >= 3) startPolling();
    const delay = jitter(Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (state.attempts - 1)));
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => {
      if (!document.hidden) connect();
    }, delay);
  }

  function connectWebSocket() {
    if (state.socket || state.stream) return; // one connection at a time, whichever timer fired first
    if (!("WebSocket" in window)) return connectEventStream();
    state.transport = state.polling ? "poll" : "ws";
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let socket;
    try {
      socket = new WebSocket(`${scheme}://${location.host}/ws/status/?batch=1&last_seq=${state.seq}`);
    } catch {
      return connectEventStream();
    }
    // Heard from: a socket that opens and closes without a word is as good as none.
    let heard = false;
    state.socket = socket;
    const timeout = setTimeout(() => socket.close(), CONNECT_TIMEOUT_MS);
    socket.onopen = () => {
      clearTimeout(timeout);
      state.transport = "ws";
      armWatchdog();
    };
    socket.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      heard = true;
      received(message);
    };
    socket.onclose = () => {
      clearTimeout(timeout);
      if (state.socket !== socket) return; // closed on purpose
      state.socket = null;
      clearTimeout(state.watchdog);
      if (document.hidden) return markDisconnected();
      if (heard) scheduleReconnect(connectWebSocket);
      else connectEventStream();
    };
  }

  async function connectEventStream() {
    if (state.stream) return;
    const controller = new AbortController();
    state.stream = controller;
    if (!state.polling) state.transport = "sse";
    let heard = false;
    const timeout = setTimeout(() => controller.abort("timeout"), CONNECT_TIMEOUT_MS);
    try {
      const response = await fetch(`/api/v1/events/?last_seq=${state.seq}`, {
        headers: { Accept: "text/event-stream", "Last-Event-ID": String(state.seq) },
        cache: "no-store",
        signal: controller.signal,
      });
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.startsWith("text/event-stream") || !response.body) throw new Error("no event stream");
      clearTimeout(timeout);
      state.transport = "sse";
      armWatchdog();
      await readEvents(response.body, () => {
        heard = true;
      });
    } catch {
      // Told apart below: closed on purpose, never opened, or dropped.
    }
    clearTimeout(timeout);
    if (state.stream !== controller) return;
    state.stream = null;
    clearTimeout(state.watchdog);
    if (controller.signal.reason === "pause" || document.hidden) return markDisconnected();
    if (heard) scheduleReconnect(connectEventStream);
    else pushFailed();
  }

  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let data = [];
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, "");
        buffer = buffer.slice(end + 1);
        if (line === "") {
          if (data.length) {
            let message = null;
            try {
              message = JSON.parse(data.join("\n"));
            } catch {
              // not JSON: ignore the event
            }
            if (message) {
              onEvent();
              received(message);
            }
          }
          data = [];
        } else if (line.startsWith(":")) {
          markFresh(); // ": ping"
          armWatchdog();
        } else {
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          // `id:` and `event:` repeat what the JSON carries (its seq and type), so only data is read.
          if (field === "data") data.push(value);
        }
      }
    }
  }

  function pushFailed() {
    // Neither WebSocket nor SSE answered: poll the snapshot, and try pushing again later.
    state.pushFailures += 1;
    startPolling();
    const delay = jitter(Math.min(PUSH_RETRY_MAX_MS, 30_000 * 2 ** (state.pushFailures - 1)));
    clearTimeout(state.pushRetryTimer);
    state.pushRetryTimer = setTimeout(() => {
      if (!document.hidden) connectWebSocket();
    }, delay);
  }

  function startPolling() {
    state.transport = "poll";
    if (state.polling) return;
    state.polling = true;
    pollOnce();
  }

  function stopPolling() {
    state.polling = false;
    clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  async function pollOnce() {
    state.pollTimer = null;
    const ok = await syncSnapshot();
    if (!state.polling) return;
    if (ok) {
      state.pollFailures = 0;
      markFresh();
    } else {
      state.pollFailures += 1;
      markDisconnected();
    }
    const delay = ok ? POLL_MS : jitter(Math.min(BACKOFF_MAX_MS, 2_000 * 2 ** (state.pollFailures - 1)));
    if (!document.hidden) state.pollTimer = setTimeout(pollOnce, delay);
  }

  function disconnect() {
    const socket = state.socket;
    state.socket = null;
    socket?.close();
    const stream = state.stream;
    state.stream = null;
    stream?.abort("pause");
    stopPolling();
    clearTimeout(state.retryTimer);
    clearTimeout(state.pushRetryTimer);
    clearTimeout(state.watchdog);
    markDisconnected();
  }

  function connect() {
    state.attempts = 0;
    state.graceUntil = Date.now() + STALE_AFTER_MS;
    updateIndicator();
    connectWebSocket();
  }

  // --- Page life ------------------------------------------------------------------------------------------------

  document.addEventListener("visibilitychange", () => {
    // Hidden tabs hold no connection; on return they catch up from the last sequence they saw.
    if (document.hidden) disconnect();
    else {
      syncSnapshot();
      connect();
    }
  });
  window.addEventListener("pageshow", (event) => {
    if (event.persisted) {
      syncSnapshot();
      connect();
    }
  });
  window.addEventListener("pagehide", disconnect);

  document.querySelector(".languages")?.addEventListener("click", (event) => {
    // Remember the choice for `/`, which redirects by it; the server sets no cookie on these pages.
    const link = event.target.closest("a[data-language]");
    const name = event.currentTarget.dataset.cookie;
    if (link && name) {
      document.cookie = `${name}=${link.dataset.language}; path=/; max-age=31536000; samesite=lax`;
    }
  });

  setInterval(updateIndicator, 5_000);
  const built = Date.parse(root.dataset.builtAt || "");
  if (!Number.isNaN(built) && Date.now() - built > OLD_PAGE_MS) {
    // Restored from a cache: show placeholders until the current snapshot is here.
    root.classList.add("is-refreshing");
    syncSnapshot();
  }
  if (!document.hidden) connect();
})();
