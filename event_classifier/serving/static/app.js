// The page of `event-classifier serve`: every piece of text from the model, an article or a file is inserted with
// textContent (never as HTML), so a paragraph containing <script> shows as text.
"use strict";

const state = { model: null, paragraphs: [], mode: "text", review: false, hidden: new Set() };
const $ = (id) => document.getElementById(id);

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) node.append(child);
  return node;
}

function labelClass(label) {
  const index = state.model ? state.model.labels.indexOf(label) : -1;
  const known = ["military_advance", "attack", "diplomacy", "other"];
  return known.includes(label) ? `label-${label}` : `label-extra-${(index + 4) % 6}`;
}

function setStatus(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  if (!response.ok) {
    const body = type.includes("json") ? await response.json() : { error: await response.text() };
    throw new Error(body.error || `HTTP ${response.status}`);
  }
  return type.includes("json") ? response.json() : response;
}

const postJSON = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

async function loadModel() {
  try {
    state.model = await api("/api/model");
  } catch (error) {
    $("model-line").textContent = `The model could not be described: ${error.message}`;
    return;
  }
  const m = state.model;
  const test = m.metrics && m.metrics.test ? `; test macro-F1 ${m.metrics.test.macro_f1.toFixed(3)}` : "";
  $("model-line").textContent = `Model ${m.name} (event_classifier ${m.version})${test}`;
  $("min-confidence").value = m.min_confidence;
  const legend = $("legend");
  const filters = $("filters");
  for (const label of m.label_descriptions) {
    legend.append(el("li", { class: `chip ${labelClass(label.name)}`, title: label.description, text: label.name }));
    const box = el("input", { type: "checkbox", checked: true, id: `show-${label.name}`, value: label.name });
    box.addEventListener("change", () => {
      if (box.checked) state.hidden.delete(label.name); else state.hidden.add(label.name);
      render();
    });
    filters.append(el("span", { class: "filter" }, box, el("label", { htmlFor: box.id, text: label.name })));
  }
}

function selectTab(mode) {
  state.mode = mode;
  for (const name of ["text", "url", "file"]) {
    const tab = $(`tab-${name}`);
    const selected = name === mode;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`panel-${name}`).hidden = !selected;
  }
}

function setupTabs() {
  const order = ["text", "url", "file"];
  for (const name of order) {
    const tab = $(`tab-${name}`);
    tab.addEventListener("click", () => selectTab(name));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = order[(order.indexOf(name) + step + order.length) % order.length];
      selectTab(next);
      $(`tab-${next}`).focus();
    });
  }
}

function setupFileDrop() {
  const zone = $("drop-zone");
  const input = $("article-file");
  const show = () => { $("file-name").textContent = input.files.length ? `Chosen: ${input.files[0].name}` : ""; };
  input.addEventListener("change", show);
  zone.tabIndex = 0;
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { event.preventDefault(); input.click(); }
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (event.dataTransfer.files.length) { input.files = event.dataTransfer.files; show(); }
  });
}

async function run(event) {
  event.preventDefault();
  const minConfidence = Number($("min-confidence").value);
  let request;
  if (state.mode === "file") {
    const file = $("article-file").files[0];
    if (!file) { setStatus("Choose or drop a file first.", true); return; }
    const form = new FormData();
    form.append("file", file);
    form.append("min_confidence", String(minConfidence));
    form.append("text_column", $("text-column").value || "text");
    request = api("/api/predict/file", { method: "POST", body: form });
  } else if (state.mode === "url") {
    request = postJSON("/api/predict", { url: $("article-url").value, min_confidence: minConfidence });
  } else {
    request = postJSON("/api/predict", { article: $("article-text").value, min_confidence: minConfidence });
  }
  $("run").disabled = true;
  setStatus("Labelling…");
  try {
    const answer = await request;
    state.paragraphs = answer.paragraphs;
    setStatus(`${answer.paragraphs.length} paragraphs labelled by ${answer.model.name}.`);
    $("toolbar").hidden = answer.paragraphs.length === 0;
    render();
    $("results").focus();
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("run").disabled = false;
  }
}

function highlighted(text, evidence) {
  // The paragraph as text nodes and <mark>s cut at the evidence words' character offsets.
  const container = el("p", { class: "text" });
  const marks = evidence.filter((w) => w.weight !== 0).sort((a, b) => a.start - b.start);
  let position = 0;
  for (const word of marks) {
    if (word.start < position) continue;
    container.append(document.createTextNode(text.slice(position, word.start)));
    const strength = Math.min(3, Math.ceil(Math.abs(word.weight) * 10));
    container.append(el("mark", { class: `${word.weight > 0 ? "for" : "against"} s${strength}`,
      title: `${word.weight > 0 ? "for" : "against"} the label, weight ${word.weight}`, text: text.slice(word.start, word.end) }));
    position = word.end;
  }
  container.append(document.createTextNode(text.slice(position)));
  return container;
}

async function explain(item, paragraph, button) {
  button.disabled = true;
  button.textContent = "Explaining…";
  try {
    const answer = await postJSON("/api/predict", { texts: [paragraph.text], explain: true });
    paragraph.evidence = answer.paragraphs[0].evidence;
    paragraph.showEvidence = true;
    render();
  } catch (error) {
    setStatus(error.message, true);
    button.disabled = false;
    button.textContent = "Why this label?";
  }
}

async function correct(paragraph, select) {
  const label = select.value;
  try {
    const saved = await postJSON("/api/feedback", {
      text: paragraph.text, label, previous_label: paragraph.label, article: paragraph.article || paragraph.source || null,
    });
    paragraph.previous_label = paragraph.previous_label || paragraph.label;
    paragraph.labels = [label, ...(paragraph.labels || []).slice(1).filter((l) => l !== label)];  // as the export does
    paragraph.label = label;
    paragraph.corrected = true;
    setStatus(`Correction saved to ${saved.saved}: “${label}”.`);
    render();
  } catch (error) {
    setStatus(error.message, true);
  }
}

function paragraphItem(paragraph) {
  const item = el("li", { class: `para ${labelClass(paragraph.label)}`, "data-label": paragraph.label });
  const percent = `${Math.round(paragraph.score * 100)} %`;
  const head = el("div", { class: "para-head" },
    el("span", { class: "badge", text: paragraph.label }),
    el("span", { class: "confidence", text: `confidence ${percent}` }));
  const secondary = (paragraph.labels || []).filter((label) => label !== paragraph.label);
  if (secondary.length) {  // a multi_label model: labels over their thresholds
    head.append(el("span", { class: "also", text: `also: ${secondary.map((l) => `${l} ${Math.round(paragraph.probs[l] * 100)} %`).join(", ")}` }));
  }
  if (paragraph.low_confidence) head.append(el("span", { class: "low", text: "⚠ low confidence" }));
  if (paragraph.corrected) head.append(el("span", { class: "corrected", text: `✓ corrected from ${paragraph.previous_label}` }));
  item.append(head);
  if (paragraph.showEvidence && paragraph.evidence) {
    item.append(highlighted(paragraph.text, paragraph.evidence));
    const words = paragraph.evidence.map((w) => `${w.token} (${w.weight > 0 ? "+" : ""}${w.weight.toFixed(2)})`);
    item.append(el("p", { class: "evidence", text: `Words that drove “${max(paragraph.probs)}”: ${words.join(", ")}` }));
  } else {
    item.append(el("p", { class: "text", text: paragraph.text }));
  }
  const actions = el("div", { class: "actions" });
  if (!paragraph.showEvidence) {
    const why = el("button", { type: "button", class: "why", text: "Why this label?" });
    why.addEventListener("click", () => explain(item, paragraph, why));
    actions.append(why);
  }
  const select = el("select", { "aria-label": "Correct label", class: "correct-select" });
  for (const label of state.model.labels) select.append(el("option", { value: label, text: label, selected: label === paragraph.label }));
  const save = el("button", { type: "button", class: "save-correction", text: "Save correction" });
  save.addEventListener("click", () => correct(paragraph, select));
  actions.append(el("label", { class: "correct-label", text: "Correct label: " }, select), save);
  item.append(actions);
  return item;
}

function max(probs) {
  return Object.entries(probs).reduce((best, entry) => (entry[1] > best[1] ? entry : best))[0];
}

function render() {
  const list = $("paragraphs");
  list.replaceChildren();
  let shown = state.paragraphs.filter((p) => !state.hidden.has(p.label));
  if (state.review) shown = [...shown].sort((a, b) => a.score - b.score);
  for (const paragraph of shown) list.append(paragraphItem(paragraph));
  const counts = {};
  for (const p of state.paragraphs) counts[p.label] = (counts[p.label] || 0) + 1;
  const low = state.paragraphs.filter((p) => p.low_confidence).length;
  $("summary").textContent = state.paragraphs.length
    ? `${shown.length} of ${state.paragraphs.length} shown${state.review ? ", least confident first" : ""}. `
      + Object.entries(counts).map(([l, n]) => `${l} ${n}`).join(", ") + (low ? `; ${low} low confidence` : "")
    : "";
}

async function download(format) {
  try {
    const response = await postJSON("/api/export", { format, paragraphs: state.paragraphs.map(exportable) });
    const name = (response.headers.get("content-disposition") || "").split("filename=")[1] || `export.${format}`;
    const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name.replaceAll('"', "") });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    setStatus(error.message, true);
  }
}

function exportable(paragraph) {
  const { showEvidence, corrected, ...row } = paragraph;
  return row;
}

document.addEventListener("DOMContentLoaded", () => {
  setupTabs();
  setupFileDrop();
  $("input-form").addEventListener("submit", run);
  $("review").addEventListener("click", () => {
    state.review = !state.review;
    $("review").setAttribute("aria-pressed", String(state.review));
    render();
  });
  for (const button of document.querySelectorAll("[data-export]")) {
    button.addEventListener("click", () => download(button.dataset.export));
  }
  loadModel();
});
