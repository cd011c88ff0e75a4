// The page to try a served model: the server's public API only (v2 REST), no framework.
// Server text is put in the page as text (textContent), never as HTML.
"use strict";

const KEY_STORE = "unified-nlp-api-key"; // sessionStorage: gone when the tab closes
const $ = (id) => document.getElementById(id);

class AuthNeeded extends Error {}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// One API call (a relative path: the page works where the app is mounted). A 401 shows the
// key form and throws AuthNeeded; another error throws the server's {"error"} message.
async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.status === 401) {
    askForKey(key ? "The API key was refused: give another one." : null);
    throw new AuthNeeded();
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (e) {
    payload = null; // not JSON (an error page of a proxy, say): the status says it
  }
  if (!response.ok) {
    const message = payload && typeof payload.error === "string" ? payload.error : response.statusText;
    const error = new Error(`${response.status}: ${message}`);
    error.status = response.status;
    throw error;
  }
  return payload;
}

function modelPath(name) {
  return `v2/models/${encodeURIComponent(name)}`;
}

function showError(error) {
  if (error instanceof AuthNeeded) return;
  $("error").textContent = error.message || String(error);
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").textContent = "";
}

function askForKey(message) {
  $("key-form").hidden = false;
  $("classify-form").hidden = true;
  if (message) showError(new Error(message));
  $("api-key").focus();
}

// The models of the repository index, READY ones selectable; the others say why not.
async function loadModels() {
  const index = await api("POST", "v2/repository/index", {});
  const select = $("model");
  const previous = select.value;
  select.replaceChildren();
  for (const entry of index) {
    const ready = entry.state === "READY";
    const why = ready ? "" : ` (${entry.state}${entry.reason ? `: ${entry.reason}` : ""})`;
    const option = el("option", null, `${entry.name} v${entry.version}${why}`);
    option.value = entry.name;
    option.disabled = !ready;
    select.append(option);
  }
  const firstReady = index.find((entry) => entry.state === "READY");
  if (index.some((entry) => entry.name === previous && entry.state === "READY")) select.value = previous;
  else if (firstReady) select.value = firstReady.name;
  if (!firstReady) throw new Error("no model is ready yet: reload the page in a moment");
  await selectModel();
}

let model = null; // {name, labels, pairs}: the selected model's metadata

async function selectModel() {
  const name = $("model").value;
  model = null;
  $("model-info").textContent = "";
  const meta = await api("GET", modelPath(name));
  const labels = (meta.parameters && meta.parameters.labels) || [];
  const pairs = (meta.inputs || []).some((input) => input.name === "text_pair");
  model = { name, labels, pairs };
  $("pairs").disabled = !pairs;
  const precision = meta.parameters && meta.parameters.precision ? `, ${meta.parameters.precision}` : "";
  $("model-info").textContent = `${meta.platform || ""}${precision}: ${labels.length} labels`;
  await showShadow(name);
}

function lines(text) {
  return text.split(/\r?\n/).filter((line) => line.trim() !== "");
}

function request(texts, pairs) {
  const tensor = (name, data) => ({ name, datatype: "BYTES", shape: [data.length], data });
  const inputs = [tensor("text", texts)];
  if (pairs.length) inputs.push(tensor("text_pair", pairs));
  return { inputs, outputs: [{ name: "probabilities" }, { name: "label" }] };
}

async function classify(event) {
  event.preventDefault();
  const form = $("classify-form");
  form.setAttribute("aria-busy", "true");
  try {
    await classifyTyped();
  } finally {
    form.setAttribute("aria-busy", "false");
    form.dataset.submits = String(Number(form.dataset.submits || 0) + 1); // each answer counted (tests wait on it)
  }
}

async function classifyTyped() {
  clearError();
  const texts = lines($("texts").value);
  const pairs = $("pairs").disabled ? [] : lines($("pairs").value);
  if (!model) return showError(new Error("choose a model first"));
  if (!texts.length) return showError(new Error("type at least one text"));
  if (pairs.length && pairs.length !== texts.length) {
    return showError(new Error(`${texts.length} texts but ${pairs.length} pair texts: give one per text, or none`));
  }
  $("submit").disabled = true;
  $("status").textContent = "Classifying…";
  const started = performance.now();
  try {
    const reply = await api("POST", `${modelPath(model.name)}/infer`, request(texts, pairs));
    const took = performance.now() - started;
    render(texts, pairs, reply);
    const count = `${texts.length} ${texts.length === 1 ? "text" : "texts"}`;
    $("status").textContent = `${count} in ${took.toFixed(0)} ms`;
    $("status").dataset.ms = took.toFixed(1);
    await showShadow(model.name);
  } catch (error) {
    $("status").textContent = "";
    showError(error);
  } finally {
    $("submit").disabled = false;
  }
}

function output(reply, name) {
  const found = (reply.outputs || []).find((tensor) => tensor.name === name);
  if (!found) throw new Error(`the reply has no output "${name}"`);
  return found;
}

// One card per text: its best label(s) and every label's probability, best first.
function render(texts, pairs, reply) {
  const probs = output(reply, "probabilities");
  const labels = output(reply, "label").data;
  const classes = probs.shape[1];
  const names = model.labels.length === classes ? model.labels : [...Array(classes).keys()].map(String);
  const cards = texts.map((text, row) => {
    const card = el("article", "result");
    card.dataset.row = String(row);
    card.append(el("p", "text", text));
    if (pairs.length) card.append(el("p", "pair", `↳ ${pairs[row]}`));
    const best = el("p", "best", labels[row] === "" ? "no label" : labels[row]);
    best.dataset.label = labels[row];
    card.append(best);
    const scores = probs.data.slice(row * classes, (row + 1) * classes).map((p, i) => [names[i], p]);
    scores.sort((a, b) => b[1] - a[1]);
    card.append(bars(scores));
    return card;
  });
  $("results").replaceChildren(...cards);
}

function bars(scores) {
  const list = el("ul", "scores");
  for (const [name, p] of scores) {
    const percent = (100 * p).toFixed(1);
    const item = el("li", "score");
    item.dataset.label = name;
    item.dataset.probability = String(p);
    const track = el("div", "track");
    track.setAttribute("role", "meter");
    track.setAttribute("aria-label", name);
    track.setAttribute("aria-valuemin", "0");
    track.setAttribute("aria-valuemax", "100");
    track.setAttribute("aria-valuenow", percent);
    track.setAttribute("aria-valuetext", `${percent}%`);
    const fill = el("div", "fill");
    fill.style.width = `${Math.min(100, Math.max(0, 100 * p))}%`;
    track.append(fill);
    item.append(el("span", "name", name), track, el("span", "value", `${percent}%`));
    list.append(item);
  }
  return list;
}

const SHADOW_FIELDS = [
  "backends",
  "n_texts",
  "argmax_agreement",
  "logits_max_abs_diff",
  "logits_p99_abs_diff",
  "latency_ms",
  "dropped",
  "passed",
  "failures",
];

function shownValue(value) {
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) < 1e-3 && value !== 0 ? value.toExponential(2) : String(Number(value.toPrecision(6)));
  }
  if (value && typeof value === "object") {
    return Object.entries(value).map(([key, item]) => `${key}: ${shownValue(item)}`).join(", ");
  }
  return String(value);
}

// The live shadow report, where the server has one for this model (else the section stays hidden).
async function showShadow(name) {
  const section = $("shadow");
  let report = null;
  try {
    report = await api("GET", `${modelPath(name)}/shadow`);
  } catch (error) {
    if (error instanceof AuthNeeded) throw error;
    report = null; // 404: no shadow for this model
  }
  const shown = report ? SHADOW_FIELDS.filter((field) => field in report) : [];
  section.hidden = shown.length === 0;
  $("shadow-fields").replaceChildren(
    ...shown.flatMap((field) => {
      const value = report[field];
      const dd = el("dd", null, shownValue(value));
      dd.dataset.field = field;
      dd.dataset.value = JSON.stringify(value); // the full value, as the server gave it
      return [el("dt", null, field), dd];
    }),
  );
}

async function start() {
  clearError();
  try {
    await loadModels();
  } catch (error) {
    showError(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("classify-form").addEventListener("submit", classify);
  $("model").addEventListener("change", () => {
    clearError();
    selectModel().catch(showError);
  });
  for (const box of [$("texts"), $("pairs")]) {
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) $("classify-form").requestSubmit();
    });
  }
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY_STORE, $("api-key").value);
    $("api-key").value = "";
    $("key-form").hidden = true;
    $("classify-form").hidden = false;
    start();
  });
  start();
});
