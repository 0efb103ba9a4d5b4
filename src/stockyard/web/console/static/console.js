// The console's one script (its Content-Security-Policy allows no inline script, no
// eval). Pages work without it; it adds what only a browser can do (docs/console.md):
//   - times in the viewer's zone, and relative ("3 h ago"), on every <time datetime>;
//   - live refresh of regions marked data-refresh="<fragment URL>", keeping the work in
//     progress (checked boxes, selects, typed text, open <details>, focus, scroll), paused
//     per tab (the pause is said on every page of the tab, never kept beyond it), asked
//     again later and later while the server is down (5xx, no network), stopped with a
//     Reload beside the region the server refuses (4xx);
//   - keyboard shortcuts (data-key="x"; "/" searches; "?" lists them; Esc cancels a
//     confirmation page);
//   - "select all" checkboxes and "N selected" counters for lists.
"use strict";

(() => {
  // ------------------------------------------------------------------------- times

  const MONTH_DAY = new Intl.DateTimeFormat("en-GB", { day: "numeric", month: "short" });
  const WITH_YEAR = new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
  });
  const CLOCK = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  const CLOCK_SECONDS = new Intl.DateTimeFormat("en-GB", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const FULL = new Intl.DateTimeFormat("en-GB", {
    dateStyle: "full",
    timeStyle: "long",
  });

  const ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

  const sameDay = (a, b) =>
    a.getFullYear() === b.getFullYear() &&
    a.getMonth() === b.getMonth() &&
    a.getDate() === b.getDate();

  function shortTime(date, now) {
    if (sameDay(date, now)) return CLOCK.format(date);
    const day = date.getFullYear() === now.getFullYear() ? MONTH_DAY : WITH_YEAR;
    return `${day.format(date)} ${CLOCK.format(date)}`;
  }

  function relative(date, now) {
    const seconds = Math.round((now - date) / 1000);
    const size = Math.abs(seconds);
    let amount;
    if (size < 45) return "just now";
    if (size < 3600) amount = `${Math.max(1, Math.round(size / 60))} min`;
    else if (size < 48 * 3600) amount = `${Math.round(size / 3600)} h`;
    else amount = `${Math.round(size / 86400)} d`;
    return seconds >= 0 ? `${amount} ago` : `in ${amount}`;
  }

  function utcText(date) {
    return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
  }

  function formatTimes(root) {
    const now = new Date();
    for (const el of root.querySelectorAll("time[datetime]")) {
      const date = new Date(el.getAttribute("datetime"));
      if (Number.isNaN(date.getTime())) continue;
      el.textContent = `${shortTime(date, now)} (${relative(date, now)})`;
      el.title = `${FULL.format(date)} (${ZONE}) · ${utcText(date)}`;
    }
  }

  // ------------------------------------------------------------------- live refresh

  const STORE_INTERVAL = "stockyard.refresh.interval";
  const STORE_PAUSED = "stockyard.refresh.paused";
  const CHOICES = [5000, 15000, 60000];
  const MAX_BACKOFF = 300000;
  const PAUSED_TEXT = "Live updates paused in this tab";
  // A 4xx says this region's request is wrong (gone, not allowed, a filter the server now
  // rejects): asking again will not mend it, that region stops. These two and every
  // 5xx (a deploy's 502/503/504, a crash) are the server's state: asked again, later.
  const RETRY_STATUSES = new Set([408, 429]);
  const refuses = (status) => status >= 400 && status < 500 && !RETRY_STATUSES.has(status);

  // The interval is a preference of the browser (localStorage); a pause is this tab's
  // only (sessionStorage): a pause kept for every page and the next morning left the
  // landing page silently not live.
  function storage(kind) {
    return {
      get(key) {
        try {
          return window[kind].getItem(key);
        } catch {
          return null; // storage off (privacy settings): defaults, nothing remembered
        }
      },
      set(key, value) {
        try {
          if (value === null) window[kind].removeItem(key);
          else window[kind].setItem(key, value);
        } catch {
          /* not remembered, still works for this page */
        }
      },
    };
  }
  const store = storage("localStorage");
  const tabStore = storage("sessionStorage");

  function storedInterval() {
    const ms = Number.parseInt(store.get(STORE_INTERVAL) || "", 10);
    return Number.isFinite(ms) && ms >= 200 ? ms : CHOICES[0];
  }

  const TEXT_TYPES = new Set([
    "",
    "text",
    "search",
    "email",
    "url",
    "tel",
    "number",
    "password",
    "date",
    "datetime-local",
    "time",
  ]);

  function isTextField(el) {
    if (!el || !(el instanceof Element)) return false;
    if (el.isContentEditable || el.tagName === "TEXTAREA") return true;
    return el.tagName === "INPUT" && TEXT_TYPES.has((el.getAttribute("type") || "").toLowerCase());
  }

  // Any control that takes keys of its own: a letter there is the control's, never a
  // shortcut (r on a focused checkbox must not retry).
  function isFormControl(el) {
    if (!el || !(el instanceof Element)) return false;
    return isTextField(el) || ["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(el.tagName);
  }

  // What identifies a control across two renderings of a region.
  function controlKey(el) {
    if (el.name) return `n:${el.name}\u0000${el.type === "checkbox" || el.type === "radio" ? el.value : ""}`;
    if (el.id) return `#${el.id}`;
    if (el.dataset.selectAll) return `all:${el.dataset.selectAll}`;
    return null;
  }

  function detailsKeys(root) {
    return Array.from(root.querySelectorAll("details"), (d, i) => {
      if (d.id) return `#${d.id}`;
      if (d.dataset.key) return `k:${d.dataset.key}`;
      return `i:${i}`;
    });
  }

  function focusKey(el) {
    if (el.id) return { id: el.id };
    if (el.name) return { name: el.name, value: el.value };
    if (el.tagName === "A") return { href: el.getAttribute("href"), text: el.textContent };
    return null;
  }

  function findFocus(root, key) {
    if (!key) return null;
    if (key.id) return root.querySelector(`#${CSS.escape(key.id)}`);
    if (key.name) {
      const named = root.querySelectorAll(`[name="${CSS.escape(key.name)}"]`);
      return Array.from(named).find((el) => el.value === key.value) || named[0] || null;
    }
    const links = root.querySelectorAll(`a[href="${CSS.escape(key.href || "")}"]`);
    return Array.from(links).find((a) => a.textContent === key.text) || links[0] || null;
  }

  // Scroll boxes by what they are (id, data-key, label), never by their place: a box a
  // refresh adds or removes must not move another's position onto it.
  function scrollers(root) {
    const boxes = new Map([["region", root]]);
    for (const el of root.querySelectorAll(".scroll, [data-keep-scroll]")) {
      const key =
        (el.id && `#${el.id}`) ||
        (el.dataset.key && `k:${el.dataset.key}`) ||
        (el.getAttribute("aria-label") && `l:${el.getAttribute("aria-label")}`);
      if (key && !boxes.has(key)) boxes.set(key, el);
    }
    return boxes;
  }

  // The operator's work in a region: what the new rendering must get back.
  function capture(region) {
    const controls = new Map();
    for (const el of region.querySelectorAll("input, select, textarea")) {
      const key = controlKey(el);
      if (!key) continue;
      if (el.type === "checkbox" || el.type === "radio") controls.set(key, { checked: el.checked });
      else if (el.tagName === "SELECT")
        controls.set(key, { selected: Array.from(el.selectedOptions, (o) => o.value) });
      else if (el.type !== "hidden" && el.value !== el.defaultValue)
        controls.set(key, { value: el.value });
    }
    const details = new Map();
    const keys = detailsKeys(region);
    region.querySelectorAll("details").forEach((d, i) => details.set(keys[i], d.open));
    const active = document.activeElement;
    return {
      controls,
      details,
      focus: active && active !== region && region.contains(active) ? focusKey(active) : null,
      scroll: new Map(
        Array.from(scrollers(region), ([key, el]) => [key, [el.scrollLeft, el.scrollTop]]),
      ),
      window: [window.scrollX, window.scrollY],
    };
  }

  function restore(region, state) {
    for (const el of region.querySelectorAll("input, select, textarea")) {
      const saved = state.controls.get(controlKey(el));
      if (!saved) continue;
      if ("checked" in saved) el.checked = saved.checked;
      else if ("selected" in saved)
        for (const option of el.options) option.selected = saved.selected.includes(option.value);
      else if ("value" in saved) el.value = saved.value;
    }
    const keys = detailsKeys(region);
    region.querySelectorAll("details").forEach((d, i) => {
      if (state.details.has(keys[i])) d.open = state.details.get(keys[i]);
    });
    const target = findFocus(region, state.focus);
    if (target) target.focus({ preventScroll: true });
    for (const [key, el] of scrollers(region)) {
      const [left, top] = state.scroll.get(key) || [0, 0];
      el.scrollLeft = left;
      el.scrollTop = top;
    }
    window.scrollTo(state.window[0], state.window[1]);
  }

  // Typing in a field of the region, a select of it open (or focused: its list may be
  // open, which no script can see), or a dialog open: refreshing now would take it away.
  // Says why (the bar shows it), else null.
  function busy(region) {
    if (document.querySelector("dialog[open]")) return "Paused while the dialog is open";
    const active = document.activeElement;
    if (!region.contains(active)) return null;
    if (active.tagName === "SELECT") return "Paused while you choose";
    return isTextField(active) ? "Paused while you type" : null;
  }

  class SignedOut extends Error {}

  // The server could not answer now (5xx, 408, 429, no network): asked again, later.
  class Unavailable extends Error {
    constructor(label) {
      super(label);
      this.label = label;
    }
  }

  // The server refused the region (gone, not allowed, a filter it now rejects, broken):
  // asking again every few seconds will not mend it.
  class Refused extends Error {
    constructor(status, text) {
      super(`HTTP ${status}`);
      this.label = text ? `${status} ${text}` : String(status);
    }
  }

  async function fetchRegion(region) {
    let response;
    try {
      response = await fetch(region.dataset.refresh, {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "text/html" },
      });
    } catch {
      throw new Unavailable("no connection"); // offline, refused, reset mid-deploy
    }
    const signIn = response.redirected && new URL(response.url).pathname === "/console/login";
    if (response.status === 401 || signIn) throw new SignedOut();
    if (refuses(response.status)) throw new Refused(response.status, response.statusText);
    if (!response.ok) {
      const text = response.statusText;
      throw new Unavailable(text ? `${response.status} ${text}` : String(response.status));
    }
    try {
      return await response.text();
    } catch {
      throw new Unavailable("connection lost");
    }
  }

  function swap(region, html) {
    const state = capture(region);
    region.innerHTML = html;
    restore(region, state);
    formatTimes(region);
    reachableScrollers(region);
    if (window.htmx) window.htmx.process(region);
    updateSelections();
    region.dispatchEvent(new CustomEvent("stockyard:refreshed", { bubbles: true }));
  }

  function liveRefresh(bar, regions) {
    const last = new WeakMap(); // region -> the HTML it shows, to skip unchanged swaps
    const stopped = new Set(); // regions the server refused: never asked again here
    let interval = storedInterval();
    let paused = tabStore.get(STORE_PAUSED) === "1";
    let failures = 0;
    let timer = null;
    let inFlight = false; // one round of fetches at a time, whatever asks for another

    const status = document.createElement("span");
    status.className = "refresh-status";
    status.setAttribute("aria-live", "polite");
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "light";
    const label = document.createElement("label");
    label.append("every ");
    const every = document.createElement("select");
    const choices = CHOICES.includes(interval) ? CHOICES : [interval, ...CHOICES];
    for (const ms of choices) {
      const option = new Option(ms < 1000 ? `${ms} ms` : `${ms / 1000} s`, String(ms));
      option.selected = ms === interval;
      every.append(option);
    }
    label.append(every);
    bar.replaceChildren(status, " · ", toggle, " · ", label);
    bar.hidden = false;

    const show = (text) => {
      if (status.textContent !== text) status.textContent = text;
    };
    const showState = () => {
      toggle.textContent = paused ? "Resume updates" : "Pause updates";
      toggle.setAttribute("aria-pressed", String(paused));
      bar.classList.toggle("is-paused", paused);
      if (paused) show(PAUSED_TEXT);
    };

    const backoff = () => (failures ? Math.min(interval * 2 ** failures, MAX_BACKOFF) : interval);

    const schedule = () => {
      window.clearTimeout(timer);
      timer = null;
      // A round in flight schedules the next itself when it ends.
      if (paused || inFlight || stopped.size === regions.length) return;
      timer = window.setTimeout(tick, backoff());
    };

    const reloadButton = () => {
      const reload = document.createElement("button");
      reload.type = "button";
      reload.className = "light";
      reload.textContent = "Reload";
      reload.addEventListener("click", () => window.location.reload());
      return reload;
    };

    // Only the refused region stops, and says so right above itself: the others stay
    // live, with the bar and its pause, until none is left.
    const stop = (region, error) => {
      stopped.add(region);
      region.dataset.refreshStopped = error.label;
      const note = document.createElement("p");
      note.className = "refresh-stopped";
      note.setAttribute("role", "status");
      note.append(`Updates of this part stopped (${error.label}). `, reloadButton());
      region.before(note);
      if (stopped.size < regions.length) return;
      bar.classList.add("is-stopped");
      show(`Updates stopped: ${error.label}; reload the page`);
      bar.replaceChildren(status, " ", reloadButton());
    };

    const updated = () => {
      const parts = stopped.size ? ` · ${stopped.size} part${stopped.size === 1 ? "" : "s"} stopped` : "";
      return `Updated ${CLOCK_SECONDS.format(new Date())}${parts}`;
    };

    // One fetch of every live region; says why a region waited (null if none did), or
    // false when a pause came while it loaded.
    async function round() {
      let held = null;
      for (const region of regions) {
        if (stopped.has(region)) continue;
        const waiting = busy(region);
        if (waiting) {
          held = waiting;
          continue;
        }
        let html;
        try {
          html = await fetchRegion(region);
        } catch (error) {
          if (!(error instanceof Refused)) throw error;
          stop(region, error);
          continue;
        }
        if (paused) return false;
        held = busy(region); // the operator started typing while it loaded
        if (held) continue;
        if (last.get(region) !== html) {
          swap(region, html);
          last.set(region, html);
        }
      }
      return held;
    }

    async function tick() {
      timer = null;
      if (paused || inFlight) return;
      if (document.hidden) return schedule(); // nobody looks: no load on the server
      inFlight = true;
      try {
        const held = await round();
        if (held === false) return;
        failures = 0;
        if (stopped.size < regions.length) show(held || updated());
      } catch (error) {
        if (error instanceof SignedOut) {
          const here = window.location.pathname + window.location.search;
          window.location.assign(`/console/login?next=${encodeURIComponent(here)}`);
          return;
        }
        failures += 1;
        const why = error instanceof Unavailable ? ` (${error.label})` : "";
        const seconds = Math.max(1, Math.round(backoff() / 1000));
        show(`Refresh failed${why} — retrying in ${seconds} s`);
      } finally {
        inFlight = false;
      }
      schedule();
    }

    toggle.addEventListener("click", () => {
      paused = !paused;
      tabStore.set(STORE_PAUSED, paused ? "1" : null);
      showState();
      if (!paused) {
        show("Resumed");
        failures = 0;
        schedule();
      } else schedule(); // clears the timer
    });
    every.addEventListener("change", () => {
      interval = Number.parseInt(every.value, 10);
      store.set(STORE_INTERVAL, every.value);
      schedule();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && !paused) schedule();
    });

    show(`Updated ${CLOCK_SECONDS.format(new Date())}`);
    showState();
    schedule();
  }

  // A page without live regions still says when this tab's updates are paused (else the
  // operator, back on the queue page later, would not know why it stands still), with
  // the button that resumes them.
  function pausedNotice(bar) {
    if (tabStore.get(STORE_PAUSED) !== "1") return;
    const status = document.createElement("span");
    status.className = "refresh-status";
    status.textContent = PAUSED_TEXT;
    const resume = document.createElement("button");
    resume.type = "button";
    resume.className = "light";
    resume.textContent = "Resume updates";
    resume.addEventListener("click", () => {
      tabStore.set(STORE_PAUSED, null);
      bar.hidden = true;
    });
    bar.replaceChildren(status, " · ", resume);
    bar.classList.add("is-paused");
    bar.hidden = false;
  }

  // Wide tables scroll inside their own box: a keyboard must reach it (axe:
  // scrollable-region-focusable), so a .scroll box without a tabindex gets one.
  function reachableScrollers(root) {
    for (const box of root.querySelectorAll(".scroll:not([tabindex])")) {
      box.tabIndex = 0;
      if (!box.getAttribute("role")) box.setAttribute("role", "region");
      if (!box.hasAttribute("aria-label") && !box.hasAttribute("aria-labelledby")) {
        const caption = box.querySelector("caption");
        let heading = box.previousElementSibling;
        while (heading && !/^H[1-6]$/.test(heading.tagName)) heading = heading.previousElementSibling;
        const name = (caption || heading)?.textContent.replace(/\s+/g, " ").trim();
        box.setAttribute("aria-label", name || "Table");
      }
    }
  }

  // ---------------------------------------------------------------------- shortcuts

  function accessibleName(el) {
    const labelled = el.getAttribute("aria-labelledby");
    if (labelled) {
      const text = labelled
        .split(/\s+/)
        .map((id) => document.getElementById(id)?.textContent || "")
        .join(" ")
        .trim();
      if (text) return text;
    }
    const text =
      el.getAttribute("aria-label") ||
      el.getAttribute("title") ||
      (el.labels && el.labels[0] ? el.labels[0].textContent : "") ||
      el.textContent ||
      el.getAttribute("placeholder") ||
      el.getAttribute("name") ||
      "";
    return text.replace(/\s+/g, " ").trim();
  }

  const visible = (el) => el.getClientRects().length > 0;

  function shortcutTargets() {
    return Array.from(document.querySelectorAll("[data-key]")).filter(
      (el) => !el.closest("dialog") && el.tagName !== "DETAILS" && visible(el),
    );
  }

  function helpDialog() {
    let dialog = document.getElementById("shortcuts");
    if (!dialog) {
      dialog = document.createElement("dialog");
      dialog.id = "shortcuts";
      dialog.setAttribute("aria-labelledby", "shortcuts-title");
      document.body.append(dialog);
    }
    const title = document.createElement("h2");
    title.id = "shortcuts-title";
    title.textContent = "Keyboard shortcuts";
    const list = document.createElement("dl");
    const add = (key, what) => {
      const dt = document.createElement("dt");
      const kbd = document.createElement("kbd");
      kbd.textContent = key;
      dt.append(kbd);
      const dd = document.createElement("dd");
      dd.textContent = what;
      list.append(dt, dd);
    };
    add("/", "Search items, SKUs, orders");
    add("?", "This list");
    const seen = new Set();
    for (const el of shortcutTargets()) {
      const key = el.dataset.key;
      if (seen.has(key)) continue;
      seen.add(key);
      add(key, accessibleName(el));
    }
    add("Esc", "Close this list");
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", () => dialog.close());
    dialog.replaceChildren(title, list, close);
    return dialog;
  }

  // A button or a checkbox takes Space and Enter, never "/" or "?": those two still
  // search and list the shortcuts from there (a letter is still the control's).
  function takesGlobalKeys(el) {
    if (!el || !(el instanceof Element)) return true;
    if (el.tagName === "BUTTON") return true;
    const type = (el.getAttribute("type") || "").toLowerCase();
    return el.tagName === "INPUT" && ["checkbox", "radio", "button", "submit", "reset"].includes(type);
  }

  // A confirmation page's Cancel (templates/confirm_action.html marks it data-cancel; the
  // bulk confirmation's is the Cancel link of a form that confirms).
  function cancelLink() {
    const marked = document.querySelector("main a[data-cancel]");
    if (marked) return marked;
    return Array.from(document.querySelectorAll("main form a[href]")).find(
      (a) => a.textContent.trim() === "Cancel" && a.closest("form").querySelector("[name=confirmed]"),
    );
  }

  function onKey(event) {
    const modifier =
      event.ctrlKey || event.metaKey || event.altKey || event.getModifierState?.("AltGraph");
    if (modifier || event.defaultPrevented) return;
    const open = document.querySelector("dialog[open]");
    if (event.key === "Escape") {
      // Closest first: a dialog, then an open menu (the phone's Account), then the page.
      const menu = document.querySelector("details.menu[open]");
      if (open) open.close();
      else if (menu) menu.open = false;
      else if (!isTextField(document.activeElement) && document.activeElement?.tagName !== "SELECT") {
        const cancel = cancelLink();
        if (cancel) {
          event.preventDefault();
          cancel.click();
        }
      }
      return;
    }
    const global = event.key === "/" || event.key === "?";
    for (const el of [event.target, document.activeElement]) {
      if (isFormControl(el) && !(global && takesGlobalKeys(el))) return;
    }
    if (open) return;
    if (event.key === "/") {
      const search = document.getElementById("search");
      if (search) {
        event.preventDefault();
        search.focus();
        search.select();
      }
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      helpDialog().showModal();
      return;
    }
    // Shift is held for "?" (and "/" on some layouts), never for a letter's shortcut.
    if (event.key.length !== 1 || event.shiftKey) return;
    const el = shortcutTargets().find((x) => x.dataset.key === event.key);
    if (!el) return;
    event.preventDefault();
    if (["A", "BUTTON", "SUMMARY"].includes(el.tagName)) el.click();
    else el.focus();
  }

  // ---------------------------------------------------------------------- selection

  function boxesOf(name, near) {
    const form = near && (near.form || near.closest("form"));
    const scope = form ? Array.from(form.elements) : Array.from(document.querySelectorAll("input"));
    return scope.filter((el) => el.type === "checkbox" && el.name === name);
  }

  function updateSelections() {
    for (const counter of document.querySelectorAll("[data-selected-count]")) {
      const name = counter.dataset.selectedCount;
      const n = boxesOf(name, counter).filter((box) => box.checked).length;
      const text = `${n.toLocaleString("en")} selected`;
      if (counter.textContent !== text) counter.textContent = text;
    }
    for (const all of document.querySelectorAll("[data-select-all]")) {
      const boxes = boxesOf(all.dataset.selectAll, all);
      const checked = boxes.filter((box) => box.checked).length;
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  function onChange(event) {
    const el = event.target;
    if (!(el instanceof HTMLInputElement) || el.type !== "checkbox") return;
    if (el.dataset.selectAll) {
      for (const box of boxesOf(el.dataset.selectAll, el)) box.checked = el.checked;
    }
    updateSelections();
  }

  // -------------------------------------------------------------------------- start

  function start() {
    formatTimes(document);
    reachableScrollers(document);
    window.setInterval(() => formatTimes(document), 30000);
    const regions = Array.from(document.querySelectorAll("[data-refresh][id]"));
    const bar = document.getElementById("refresh");
    // Before this tab kept its pause, every tab kept it forever: forget that one.
    store.set(STORE_PAUSED, null);
    if (bar && regions.length) liveRefresh(bar, regions);
    else if (bar) pausedNotice(bar);
    document.addEventListener("keydown", onKey);
    document.addEventListener("change", onChange);
    // Fragments htmx swaps in (a page's own hx-get) get local times too.
    document.addEventListener("htmx:afterSwap", (event) => formatTimes(event.target));
    updateSelections();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
