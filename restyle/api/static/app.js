// restyle web page: plain JS, no build step. Talks to the same API as any client.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { file: null, style: null, busy: false, resultUrl: null, originalUrl: null };

function authHeaders() {
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem("restyle-api-key", key);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (response.status === 401) $("auth").open = true;
    return `${body.message || response.statusText} (${response.status})`;
  } catch {
    return `${response.statusText || "error"} (${response.status})`;
  }
}

function selectStyle(name) {
  state.style = name;
  for (const el of document.querySelectorAll(".style")) {
    el.setAttribute("aria-checked", String(el.dataset.style === name));
  }
  updateButton();
}

function updateButton() {
  $("go").disabled = state.busy || !state.file || !state.style;
}

async function loadStyles() {
  const response = await fetch("/v1/styles", { headers: authHeaders() });
  if (!response.ok) {
    setStatus(`Could not load styles: ${await errorText(response)}`, true);
    return;
  }
  const data = await response.json();
  const box = $("styles");
  box.replaceChildren();
  for (const entry of data.styles) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "style";
    button.dataset.style = entry.name;
    button.setAttribute("role", "radio");
    button.setAttribute("aria-checked", "false");
    button.title = `${entry.name} (${entry.arch})`;
    const img = document.createElement("img");
    img.alt = `${entry.name} preview`;
    const label = document.createElement("span");
    label.textContent = entry.name;
    button.append(img, label);
    button.addEventListener("click", () => {
      selectStyle(entry.name);
      if (state.file) stylize();
    });
    box.append(button);
    // Previews go through fetch (not <img src>) so that an API key can be sent with them.
    fetch(entry.preview_url, { headers: authHeaders() })
      .then((r) => (r.ok ? r.blob() : Promise.reject(r)))
      .then((blob) => { img.src = URL.createObjectURL(blob); })
      .catch(() => { img.alt = `${entry.name} (no preview)`; });
  }
  if (data.styles.length === 0) setStatus("No styles are installed on this server.", true);
  else selectStyle(data.default || data.styles[0].name);
}

async function stylize() {
  if (!state.file || !state.style || state.busy) return;
  state.busy = true;
  updateButton();
  setStatus(`Stylizing with ${state.style}…`);
  const form = new FormData();
  form.append("image", state.file);
  form.append("style", state.style);
  form.append("strength", $("strength").value);
  form.append("preserve_color", String($("preserve-color").checked));
  form.append("format", "jpeg");
  const started = performance.now();
  try {
    const response = await fetch("/v1/stylize", { method: "POST", body: form, headers: authHeaders() });
    if (!response.ok) {
      setStatus(`Failed: ${await errorText(response)}`, true);
      return;
    }
    const blob = await response.blob();
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(blob);
    const result = $("result");
    result.src = state.resultUrl;
    result.hidden = false;
    const model = response.headers.get("X-Model") || state.style;
    const inference = response.headers.get("X-Inference-Time-Ms");
    $("result-caption").textContent = `Result: ${model}`;
    const link = $("download");
    link.href = state.resultUrl;
    link.download = `restyled-${model.replace(/[^a-z0-9_-]/gi, "_")}.jpg`;
    link.hidden = false;
    const total = Math.round(performance.now() - started);
    setStatus(`Done in ${total} ms${inference ? ` (network ${Math.round(Number(inference))} ms)` : ""}.`);
  } catch (err) {
    setStatus(`Failed: ${err}`, true);
  } finally {
    state.busy = false;
    updateButton();
  }
}

function init() {
  $("api-key").value = localStorage.getItem("restyle-api-key") || "";
  $("api-key").addEventListener("change", loadStyles);
  $("photo").addEventListener("change", () => {
    state.file = $("photo").files[0] || null;
    if (state.originalUrl) URL.revokeObjectURL(state.originalUrl);
    if (state.file) {
      state.originalUrl = URL.createObjectURL(state.file);
      $("original").src = state.originalUrl;
      $("original").hidden = false;
      setStatus("Photo loaded: choose a style, then Stylize.");
    }
    updateButton();
  });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = Number($("strength").value).toFixed(2);
  });
  $("strength").addEventListener("change", () => { if (state.file && $("result").src) stylize(); });
  $("go").addEventListener("click", stylize);
  loadStyles();
}

document.addEventListener("DOMContentLoaded", init);
