// The Inqueue console's only script: live regions (HTML fragments polled from the server) and the buttons.
// No library, no build step. State changes are POSTs of JSON with this run's token (see web.py).
"use strict";

const token = () => document.querySelector('meta[name="inqueue-token"]').content;

async function post(url, body) {
  const answer = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Inqueue-Token": token() },
    body: JSON.stringify(body || {}),
    credentials: "same-origin",
  });
  let data = {};
  try { data = await answer.json(); } catch (_) { /* not JSON: said below */ }
  if (!answer.ok && answer.status !== 202) {
    const message = (data.error && data.error.message) || data.summary || `${answer.status} ${answer.statusText}`;
    throw new Error(message);
  }
  return data;
}

// ------------------------------------------------------------------ live regions

const regions = [];

class Live {
  constructor(element) {
    this.element = element;
    this.url = element.dataset.live;
    this.every = Number(element.dataset.every || 2000);
    this.stopWhen = element.dataset.stopWhen || null;
    this.countUrl = element.dataset.whenChanges || null;  // refresh only when the DLQ's count changes
    this.lastCount = null;
    this.until = 0;  // after an action: keep polling until then, whatever stopWhen says
    this.timer = null;
    this.busy = false;
    this.paused = false;
  }

  start() {
    if (this.timer === null && !this.stopped()) this.timer = setTimeout(() => this.tick(), this.every);
  }

  restart() {
    clearTimeout(this.timer);
    this.until = Date.now() + 15000;
    this.timer = setTimeout(() => this.tick(), 200);
  }

  stopped() {
    if (Date.now() < this.until) return false;
    return this.stopWhen !== null && this.element.querySelector(this.stopWhen) !== null;
  }

  async tick() {
    this.timer = null;
    if (!document.hidden && !this.busy && !this.paused) {
      this.busy = true;
      try {
        if (this.countUrl === null || (await this.changed())) await this.refresh();
      } catch (_) {
        // The server is restarting or gone: try again on the next tick.
      } finally {
        this.busy = false;
      }
    }
    this.start();
  }

  async changed() {
    const answer = await fetch(this.countUrl, { credentials: "same-origin" });
    const queues = await answer.json();
    const dead = queues.find((queue) => queue.name === "dead letters");
    const count = dead ? dead.visible + dead.in_flight + dead.delayed : 0;
    const changed = this.lastCount !== null && count !== this.lastCount;
    const first = this.lastCount === null;
    this.lastCount = count;
    const shown = this.element.querySelector("[data-dead-count]");
    return changed || (first && shown !== null && Number(shown.dataset.deadCount) !== count);
  }

  async refresh() {
    const answer = await fetch(this.url, { credentials: "same-origin" });
    if (!answer.ok) return;
    const html = await answer.text();
    const checked = new Set([...this.element.querySelectorAll("input[name=chosen]:checked")].map((box) => box.value));
    this.element.innerHTML = html;
    for (const box of this.element.querySelectorAll("input[name=chosen]")) box.checked = checked.has(box.value);
    this.element.dispatchEvent(new CustomEvent("refreshed", { bubbles: true }));
  }
}

function refreshAll() {
  for (const region of regions) region.restart();
}

// ------------------------------------------------------------------ replay

function armed(button) {
  // A button with data-confirm acts on its second click within 6 s; the first says what it will do.
  if (!button.dataset.confirm) return true;
  if (button.dataset.armed === "yes") return true;
  const label = button.textContent;
  button.dataset.armed = "yes";
  button.textContent = "Click again to confirm";
  button.title = button.dataset.confirm;
  show(button.parentElement.querySelector("output"), button.dataset.confirm, "warn");
  setTimeout(() => { button.dataset.armed = ""; button.textContent = label; }, 6000);
  return false;
}

function show(output, text, kind) {
  if (!output) return;
  output.textContent = text;
  output.className = `result ${kind || ""}`;
}

async function replay(button) {
  if (!armed(button)) return;
  const output = button.parentElement.querySelector("output");
  button.disabled = true;
  try {
    const url = `/api/events/${encodeURIComponent(button.dataset.replay)}/replay`;
    const outcome = await post(url, { bypass_idempotency: button.dataset.bypass === "true" });
    show(output, `${outcome.summary}${outcome.notes && outcome.notes.length ? ` (${outcome.notes.join("; ")})` : ""}`, "ok");
    refreshAll();
  } catch (error) {
    show(output, error.message, "bad");
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ dead letters

function chosen() {
  return [...document.querySelectorAll("#dead input[name=chosen]:checked")].map((box) => box.value);
}

function updateSelection() {
  const selected = chosen();
  for (const button of document.querySelectorAll("[data-dlq][data-scope=selected]")) button.disabled = selected.length === 0;
  const what = document.querySelector("[data-purge-what]");
  if (what) what.textContent = selected.length ? `the ${selected.length} selected dead letter(s)` : "every dead letter";
}

async function follow(job) {
  const box = document.querySelector(".job");
  const bar = box.querySelector("progress");
  const output = box.querySelector("output");
  box.hidden = false;
  for (;;) {
    bar.max = Math.max(job.total || 0, job.done, 1);
    bar.value = job.done;
    output.textContent = job.state === "running" ? `${job.action}: ${job.done} of ${job.total ?? "?"}` : job.summary;
    output.className = job.state === "running" ? "" : job.state === "done" ? "ok" : "bad";
    if (job.state !== "running") break;
    await new Promise((resolve) => setTimeout(resolve, 300));
    job = await (await fetch(`/api/jobs/${job.id}`, { credentials: "same-origin" })).json();
  }
  for (const region of regions) region.paused = false;
  refreshAll();
}

async function deadLetters(button) {
  const action = button.dataset.dlq;
  const selected = chosen();
  const body = selected.length && (button.dataset.scope === "selected" || action === "purge") ? { ids: selected } : { all: true };
  if (action === "purge") {
    body.confirm = "purge";
    document.querySelector(".confirm").hidden = true;
  }
  for (const region of regions) region.paused = true;  // the list is not read again while the job holds messages
  const buttons = document.querySelectorAll("[data-dlq]");
  for (const each of buttons) each.disabled = true;
  try {
    await follow(await post(`/api/dead-letters/${action}`, body));
  } catch (error) {
    const box = document.querySelector(".job");
    box.hidden = false;
    show(box.querySelector("output"), error.message, "bad");
    for (const region of regions) region.paused = false;
  } finally {
    for (const each of buttons) each.disabled = false;
    updateSelection();
  }
}

// ------------------------------------------------------------------ wiring

document.addEventListener("click", (event) => {
  const target = event.target.closest("button");
  if (!target) return;
  if (target.dataset.replay) replay(target);
  else if (target.dataset.dlq) deadLetters(target);
  else if (target.hasAttribute("data-dlq-purge")) document.querySelector(".confirm").hidden = false;
  else if (target.hasAttribute("data-purge-cancel")) document.querySelector(".confirm").hidden = true;
});

document.addEventListener("change", (event) => {
  if (event.target.matches("[data-select-all]")) {
    for (const box of document.querySelectorAll("#dead input[name=chosen]")) box.checked = event.target.checked;
  }
  updateSelection();
});

document.addEventListener("refreshed", updateSelection);

document.addEventListener("DOMContentLoaded", () => {
  for (const element of document.querySelectorAll("[data-live]")) {
    const region = new Live(element);
    regions.push(region);
    region.start();
  }
  document.addEventListener("visibilitychange", () => { if (!document.hidden) refreshAll(); });
  updateSelection();
});
