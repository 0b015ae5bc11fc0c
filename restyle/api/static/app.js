// restyle web page: plain JS, no build step, no network beyond this server. Talks to the same API as any client.
"use strict";

const $ = (id) => document.getElementById(id);
const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const POLL_MS = 700;

const state = {
  styles: [], // entries of GET /v1/styles
  style: null, // the chosen style, shared by the Photo and Video tabs
  previews: new Map(), // style name -> Promise of an object URL (null when there is none)
  photo: { file: null, originalUrl: null, resultUrl: null, resultName: null, busy: false, again: false },
  video: { file: null, job: null, timer: null, resultUrl: null, submitting: false, cancelling: false },
  training: { name: null, jobId: null, statusUrl: null, previewUrl: null, timer: null, step: null, previewObj: null },
  newStyleImage: null,
  newStyleThumbUrl: null,
};

// -- helpers --------------------------------------------------------------------------------------------
function authHeaders() {
  const key = $("api-key").value.trim();
  if (key) localStorage.setItem("restyle-api-key", key);
  else localStorage.removeItem("restyle-api-key");
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function api(path, options = {}) {
  return fetch(path, { ...options, headers: { ...authHeaders(), ...(options.headers || {}) } });
}

function setLine(id, text, isError = false) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", isError);
}

const setStatus = (text, isError = false) => setLine("status", text, isError);

/** One line for a failed response: the server's message (JSON error body), then the status code. */
async function errorText(response) {
  let message = "";
  try {
    const body = await response.json();
    message = body.message || (typeof body.detail === "string" ? body.detail : "") || "";
    const details = Array.isArray(body.details) ? body.details.map((d) => d && d.msg).filter(Boolean) : [];
    if (details.length) message += `: ${details.join("; ")}`;
  } catch {
    /* not JSON */
  }
  if (response.status === 401) $("auth").open = true;
  const retry = response.headers.get("Retry-After");
  let text = `${message || response.statusText || "request failed"} (${response.status})`;
  if (response.status === 401) text += "; enter the API key above";
  if (retry && /^\d+$/.test(retry)) text += `; retry in ${retry} s`;
  return text.replace(/\s+/g, " ").trim();
}

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

function saveBlobUrl(url, filename) {
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
}

/** Show ``img`` only once ``url`` has loaded: never a broken-image icon or alt text in its place. */
function showImage(img, url) {
  return new Promise((resolve) => {
    const probe = new Image();
    probe.onload = () => {
      img.src = url;
      img.hidden = false;
      resolve(true);
    };
    probe.onerror = () => resolve(false);
    probe.src = url;
  });
}

// -- tabs -----------------------------------------------------------------------------------------------
function tabs() {
  return [...document.querySelectorAll('[role="tab"]')];
}

function selectTab(tab, focus = false) {
  for (const t of tabs()) {
    const selected = t === tab;
    t.setAttribute("aria-selected", String(selected));
    t.tabIndex = selected ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
}

function currentTab() {
  return tabs().find((t) => t.getAttribute("aria-selected") === "true").id;
}

function initTabs() {
  for (const t of tabs()) t.addEventListener("click", () => selectTab(t));
  document.querySelector('[role="tablist"]').addEventListener("keydown", (event) => {
    const all = tabs();
    const at = all.indexOf(document.activeElement);
    if (at < 0) return;
    const moves = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: all.length - 1 };
    if (!(event.key in moves)) return;
    event.preventDefault();
    selectTab(all[(moves[event.key] + all.length) % all.length], true);
  });
}

// -- styles ---------------------------------------------------------------------------------------------
function previewOf(entry) {
  if (!state.previews.has(entry.name)) {
    // Through fetch (not <img src>) so that an API key can be sent with it.
    const promise = api(entry.preview_url)
      .then((r) => (r.ok ? r.blob() : null))
      .then((blob) => (blob ? URL.createObjectURL(blob) : null))
      .catch(() => null);
    state.previews.set(entry.name, promise);
  }
  return state.previews.get(entry.name);
}

function styleTile(entry) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "style";
  button.dataset.style = entry.name;
  button.setAttribute("role", "radio");
  button.setAttribute("aria-checked", "false");
  button.tabIndex = -1;
  button.title = `${entry.name} (${entry.source === "user" ? "your style" : entry.arch})`;
  const thumb = document.createElement("span");
  thumb.className = "thumb";
  const img = document.createElement("img");
  img.alt = ""; // decorative: the name is the button's label
  img.hidden = true;
  thumb.append(img);
  const label = document.createElement("span");
  label.className = "name";
  // Long names wrap, preferably after "_" or "-" (<wbr>), never cut off; the tooltip has the name too.
  for (const part of entry.name.split(/(?<=[_-])/)) label.append(part, document.createElement("wbr"));
  label.lastChild.remove();
  button.append(thumb, label);
  button.addEventListener("click", () => chooseStyle(entry.name));
  previewOf(entry).then((url) => {
    if (url) showImage(img, url).then((ok) => ok || thumb.classList.add("missing"));
    else thumb.classList.add("missing");
  });
  return button;
}

function renderStyles() {
  for (const box of [$("styles"), $("video-styles")]) {
    box.replaceChildren(...state.styles.map(styleTile));
    if (state.styles.length === 0) {
      const empty = document.createElement("p");
      empty.className = "hint";
      empty.textContent = "No styles are installed on this server.";
      box.append(empty);
    }
  }
  markStyle();
}

function markStyle() {
  for (const el of document.querySelectorAll(".style")) {
    const on = el.dataset.style === state.style;
    el.setAttribute("aria-checked", String(on));
    el.tabIndex = on ? 0 : -1;
  }
  updatePhotoActions();
  updateVideoActions();
}

function chooseStyle(name) {
  state.style = name;
  markStyle();
  if (currentTab() === "tab-photo" && state.photo.file) stylize();
}

function initStyleKeys(box) {
  box.addEventListener("keydown", (event) => {
    const tiles = [...box.querySelectorAll(".style")];
    const at = tiles.indexOf(document.activeElement);
    if (at < 0) return;
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (!step) return;
    event.preventDefault();
    const next = tiles[(at + step + tiles.length) % tiles.length];
    chooseStyle(next.dataset.style);
    next.focus();
  });
}

async function loadStyles(select = null) {
  let response;
  try {
    response = await api("/v1/styles");
  } catch (err) {
    setStatus(`Could not load styles: ${err}`, true);
    return false;
  }
  if (!response.ok) {
    setStatus(`Could not load styles: ${await errorText(response)}`, true);
    return false;
  }
  const data = await response.json();
  state.styles = data.styles;
  // A re-trained style of the same name gets a fresh thumbnail; the old tiles go in renderStyles below.
  for (const old of state.previews.values()) old.then((url) => url && URL.revokeObjectURL(url));
  state.previews.clear();
  const names = new Set(data.styles.map((s) => s.name));
  if (select && names.has(select)) state.style = select;
  else if (!names.has(state.style)) state.style = data.default || (data.styles[0] && data.styles[0].name) || null;
  renderStyles();
  if (data.styles.length === 0) setStatus("No styles are installed on this server.", true);
  return names;
}

// -- photo ----------------------------------------------------------------------------------------------
function updatePhotoActions() {
  const p = state.photo;
  $("go").disabled = p.busy || !p.file || !state.style;
  $("download").disabled = !p.resultUrl;
  const hasResult = Boolean(p.resultUrl);
  for (const id of ["view-slider", "view-side", "compare"]) $(id).disabled = !hasResult;
}

function setViewerMode(mode) {
  $("viewer").dataset.mode = mode;
  $("view-slider").setAttribute("aria-pressed", String(mode === "slider"));
  $("view-side").setAttribute("aria-pressed", String(mode === "side"));
}

let preferredView = "slider";

function setPhoto(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    setStatus(`“${file.name}” is not an image: choose a JPEG, PNG or WebP photo.`, true);
    return;
  }
  const p = state.photo;
  p.file = file;
  if (p.originalUrl) URL.revokeObjectURL(p.originalUrl);
  if (p.resultUrl) URL.revokeObjectURL(p.resultUrl);
  p.originalUrl = URL.createObjectURL(file);
  p.resultUrl = null;
  $("result").hidden = true;
  $("result").removeAttribute("src");
  $("result-caption").textContent = "After";
  $("result-hint").textContent = "Choose a style, then Stylize.";
  $("original").hidden = true;
  $("photo-name").textContent = file.name;
  setViewerMode("side");
  showImage($("original"), p.originalUrl).then((ok) => {
    if (!ok) setStatus(`“${file.name}” cannot be shown by this browser; the server may still read it.`, true);
  });
  updatePhotoActions();
  if (state.style) stylize();
  else setStatus("Photo loaded: choose a style.");
}

async function stylize() {
  const p = state.photo;
  if (!p.file || !state.style) return;
  if (p.busy) {
    p.again = true; // run once more with the latest choices when this one is done
    return;
  }
  p.busy = true;
  p.again = false;
  updatePhotoActions();
  const style = state.style;
  setStatus(`Stylizing with ${style}…`);
  $("viewer").classList.add("busy");
  if (!p.resultUrl) $("result-hint").textContent = `Stylizing with ${style}…`;
  const form = new FormData();
  form.append("image", p.file);
  form.append("style", style);
  form.append("strength", $("strength").value);
  form.append("preserve_color", String($("preserve-color").checked));
  form.append("format", "jpeg");
  const started = performance.now();
  const file = p.file;
  try {
    const response = await api("/v1/stylize", { method: "POST", body: form });
    if (!response.ok) {
      const text = await errorText(response);
      setStatus(`Failed: ${text}`, true);
      if (!p.resultUrl) $("result-hint").textContent = "No result: see the message on the left.";
      return;
    }
    const blob = await response.blob();
    if (file !== p.file) return; // another photo was chosen meanwhile
    const url = URL.createObjectURL(blob);
    if (!(await showImage($("result"), url))) {
      URL.revokeObjectURL(url);
      setStatus("Failed: the server's answer is not an image this browser can show.", true);
      return;
    }
    if (p.resultUrl) URL.revokeObjectURL(p.resultUrl);
    p.resultUrl = url;
    const model = response.headers.get("X-Model") || style;
    p.resultName = `restyled-${model.replace(/[^a-z0-9_-]/gi, "_")}.jpg`;
    $("result-caption").textContent = `After: ${model}`;
    setViewerMode(preferredView);
    const total = Math.round(performance.now() - started);
    const inference = response.headers.get("X-Inference-Time-Ms");
    setStatus(`Done in ${total} ms${inference ? ` (network ${Math.round(Number(inference))} ms)` : ""}.`);
  } catch (err) {
    setStatus(`Failed: ${err}`, true);
  } finally {
    p.busy = false;
    $("viewer").classList.remove("busy");
    updatePhotoActions();
    if (p.again) stylize();
  }
}

function initPhoto() {
  $("photo").addEventListener("change", () => {
    setPhoto($("photo").files[0] || null);
    $("photo").value = ""; // choosing the same file again still fires "change"
  });
  $("strength").addEventListener("input", () => {
    $("strength-value").textContent = Number($("strength").value).toFixed(2);
  });
  $("strength").addEventListener("change", () => state.photo.resultUrl && stylize());
  $("preserve-color").addEventListener("change", () => state.photo.resultUrl && stylize());
  $("go").addEventListener("click", stylize);
  $("download").addEventListener("click", () => {
    if (state.photo.resultUrl) saveBlobUrl(state.photo.resultUrl, state.photo.resultName || "restyled.jpg");
  });
  $("compare").addEventListener("input", () => $("viewer").style.setProperty("--pos", `${$("compare").value}%`));
  $("view-slider").addEventListener("click", () => setViewerMode((preferredView = "slider")));
  $("view-side").addEventListener("click", () => setViewerMode((preferredView = "side")));
  initStyleKeys($("styles"));
}

// -- dropping files anywhere ------------------------------------------------------------------------
function initDrop() {
  let depth = 0;
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  const overlay = (on) => {
    document.body.classList.toggle("drag-over", on);
    const what = { "tab-video": "the video", "tab-new-style": "the style image" }[currentTab()] || "the photo";
    $("drop-text").textContent = `Drop ${what} here`;
  };
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    overlay(true);
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    overlay(true);
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) overlay(false);
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    overlay(false);
    const file = event.dataTransfer.files[0];
    if (!file) return;
    const tab = currentTab();
    if (file.type.startsWith("video/")) {
      selectTab($("tab-video"));
      setVideo(file);
    } else if (tab === "tab-new-style") {
      setNewStyleImage(file);
    } else {
      selectTab($("tab-photo"));
      setPhoto(file);
    }
  });
}

// -- video ------------------------------------------------------------------------------------------------
const setVideoStatus = (text, isError = false) => setLine("video-status", text, isError);
const ACTIVE = new Set(["queued", "running"]);

function updateVideoActions() {
  const v = state.video;
  const active = Boolean(v.job && ACTIVE.has(v.job.state));
  $("video-go").disabled = v.submitting || active || !v.file || !state.style;
  $("video-cancel").disabled = !active || v.cancelling;
  $("video-download").disabled = !v.resultUrl;
}

function setVideo(file) {
  if (!file) return;
  state.video.file = file;
  $("video-name").textContent = `${file.name} (${formatBytes(file.size)})`;
  setVideoStatus("Video chosen: pick a style, then Stylize video.");
  updateVideoActions();
}

function clearVideoResult() {
  const v = state.video;
  if (v.resultUrl) URL.revokeObjectURL(v.resultUrl);
  v.resultUrl = null;
  const video = $("video-result");
  video.hidden = true;
  video.removeAttribute("src");
  video.load();
  $("video-hint").hidden = false;
}

async function submitVideo() {
  const v = state.video;
  if (!v.file || !state.style) return;
  v.submitting = true;
  clearVideoResult();
  updateVideoActions();
  setVideoStatus(`Uploading ${v.file.name}…`);
  const form = new FormData();
  form.append("video", v.file);
  form.append("style", state.style);
  form.append("stabilize", String($("video-stabilize").checked));
  try {
    const response = await api("/v1/jobs/video", { method: "POST", body: form });
    if (!response.ok) {
      setVideoStatus(`Not accepted: ${await errorText(response)}`, true);
      return;
    }
    const job = await response.json();
    localStorage.setItem("restyle-video-job", job.id);
    v.cancelling = false;
    showJob(job);
  } catch (err) {
    setVideoStatus(`Upload failed: ${err}`, true);
  } finally {
    v.submitting = false;
    updateVideoActions();
  }
}

function showJob(job) {
  const v = state.video;
  v.job = job;
  const bar = $("video-progress");
  bar.hidden = false;
  bar.value = job.state === "succeeded" ? 1 : job.progress || 0;
  const pct = Math.round((job.progress || 0) * 100);
  clearTimeout(v.timer);
  if (v.cancelling && ACTIVE.has(job.state)) setVideoStatus("Cancelling…");
  else if (job.state === "queued") setVideoStatus("Queued: waiting for a worker…");
  else if (job.state === "running") {
    const frames = job.frames_total ? `${job.frames_done} / ${job.frames_total} frames, ` : "";
    setVideoStatus(`Stylizing with ${job.style}: ${frames}${pct}%`);
  } else if (job.state === "succeeded") fetchVideoResult(job);
  else if (job.state === "cancelled") setVideoStatus("Cancelled.");
  else if (job.state === "expired") setVideoStatus("This job's result has expired; submit the video again.", true);
  else setVideoStatus(`Failed: ${job.error || "the job failed"}`, true);
  if (ACTIVE.has(job.state)) v.timer = setTimeout(pollVideo, POLL_MS);
  else if (job.state !== "succeeded") localStorage.removeItem("restyle-video-job");
  updateVideoActions();
}

async function pollVideo() {
  const v = state.video;
  if (!v.job) return;
  const id = v.job.id;
  try {
    const response = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    if (!v.job || v.job.id !== id) return;
    if (response.status === 404) {
      localStorage.removeItem("restyle-video-job");
      v.job = null;
      $("video-progress").hidden = true;
      setVideoStatus("The job is no longer known to the server.", true);
      updateVideoActions();
      return;
    }
    if (!response.ok) {
      setVideoStatus(`Could not read the job: ${await errorText(response)}; retrying…`, true);
      v.timer = setTimeout(pollVideo, POLL_MS * 3);
      return;
    }
    showJob(await response.json());
  } catch (err) {
    setVideoStatus(`Lost the server (${err}); retrying…`, true);
    v.timer = setTimeout(pollVideo, POLL_MS * 3);
  }
}

async function fetchVideoResult(job) {
  const v = state.video;
  setVideoStatus("Done: downloading the result…");
  try {
    // fetch (not <video src>) so that an API key can be sent with it
    const response = await api(`/v1/jobs/${encodeURIComponent(job.id)}/result`);
    if (!response.ok) {
      setVideoStatus(`Could not fetch the result: ${await errorText(response)}`, true);
      return;
    }
    const blob = await response.blob();
    if (!v.job || v.job.id !== job.id) return;
    clearVideoResult();
    v.resultUrl = URL.createObjectURL(new Blob([blob], { type: "video/mp4" }));
    const video = $("video-result");
    video.src = v.resultUrl;
    video.hidden = false;
    $("video-hint").hidden = true;
    const took = job.started_at && job.finished_at ? ` in ${(job.finished_at - job.started_at).toFixed(1)} s` : "";
    setVideoStatus(`Done${took}: ${job.frames_done} frames in ${job.style}.`);
  } catch (err) {
    setVideoStatus(`Could not fetch the result: ${err}`, true);
  } finally {
    updateVideoActions();
  }
}

async function cancelVideo() {
  const v = state.video;
  if (!v.job) return;
  $("video-cancel").disabled = true;
  v.cancelling = true;
  setVideoStatus("Cancelling…");
  try {
    const response = await api(`/v1/jobs/${encodeURIComponent(v.job.id)}/cancel`, { method: "POST" });
    if (response.ok) showJob(await response.json());
    else {
      v.cancelling = false;
      setVideoStatus(`Could not cancel: ${await errorText(response)}`, true);
      clearTimeout(v.timer);
      v.timer = setTimeout(pollVideo, POLL_MS); // the job's real state (it may have just finished)
    }
  } catch (err) {
    v.cancelling = false;
    setVideoStatus(`Could not cancel: ${err}`, true);
    updateVideoActions();
  }
}

function initVideo() {
  $("video-file").addEventListener("change", () => {
    setVideo($("video-file").files[0] || null);
    $("video-file").value = "";
  });
  $("video-go").addEventListener("click", submitVideo);
  $("video-cancel").addEventListener("click", cancelVideo);
  $("video-download").addEventListener("click", () => {
    const v = state.video;
    if (v.resultUrl) saveBlobUrl(v.resultUrl, `restyled-${v.job ? v.job.id : "video"}.mp4`);
  });
  initStyleKeys($("video-styles"));
  const pending = localStorage.getItem("restyle-video-job");
  if (pending) {
    // A job from before a reload: pick it up again (or forget it when the server does not know it).
    state.video.job = { id: pending, state: "queued", progress: 0 };
    pollVideo();
  }
}

// -- new style --------------------------------------------------------------------------------------------
const setTrainStatus = (text, isError = false) => setLine("new-style-status", text, isError);

function nameError() {
  const name = $("new-style-name").value.trim();
  if (!name) return "";
  if (name.length > 64) return "At most 64 characters.";
  if (!NAME_PATTERN.test(name)) return "Use lowercase letters, digits, “-” and “_”, starting with a letter or digit.";
  return "";
}

function training() {
  return Boolean(state.training.statusUrl);
}

function updateTrainActions() {
  const name = $("new-style-name").value.trim();
  $("new-style-go").disabled = training() || !name || Boolean(nameError()) || !state.newStyleImage;
  $("new-style-cancel").disabled = !training() || !state.training.jobId;
  const problem = nameError();
  const help = $("new-style-name-help");
  help.textContent = problem || "Lowercase letters, digits, “-” and “_”.";
  help.classList.toggle("error", Boolean(problem));
  $("new-style-name").setAttribute("aria-invalid", String(Boolean(problem)));
}

function setNewStyleImage(file) {
  if (!file) return;
  if (file.type && !file.type.startsWith("image/")) {
    setTrainStatus(`“${file.name}” is not an image.`, true);
    return;
  }
  state.newStyleImage = file;
  if (state.newStyleThumbUrl) URL.revokeObjectURL(state.newStyleThumbUrl);
  state.newStyleThumbUrl = URL.createObjectURL(file);
  $("new-style-thumb").hidden = true;
  showImage($("new-style-thumb"), state.newStyleThumbUrl).then((ok) => {
    $("new-style-thumb-hint").hidden = ok;
    $("new-style-thumb-hint").textContent = ok ? "" : "No preview for this file";
  });
  $("new-style-image-name").textContent = `${file.name} (${formatBytes(file.size)})`;
  if (!$("new-style-name").value.trim()) {
    const guess = file.name
      .replace(/\.[^.]*$/, "")
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, "_")
      .replace(/^[_-]+/, "")
      .slice(0, 64);
    if (NAME_PATTERN.test(guess)) $("new-style-name").value = guess;
  }
  updateTrainActions();
}

function resetTrainingPreview() {
  const t = state.training;
  if (t.previewObj) URL.revokeObjectURL(t.previewObj);
  t.previewObj = null;
  t.step = null;
  $("training-preview").hidden = true;
  $("training-preview").removeAttribute("src");
  $("training-hint").hidden = false;
  $("training-caption").textContent = "";
}

async function submitStyle(event) {
  event.preventDefault();
  if ($("new-style-go").disabled) return;
  const name = $("new-style-name").value.trim();
  const form = new FormData();
  form.append("name", name);
  form.append("image", state.newStyleImage);
  const steps = $("new-style-steps").value.trim();
  if (steps) form.append("steps", steps);
  $("new-style-go").disabled = true;
  $("new-style-use").hidden = true;
  resetTrainingPreview();
  setTrainStatus(`Uploading the style image for “${name}”…`);
  try {
    const response = await api("/v1/styles", { method: "POST", body: form });
    if (!response.ok) {
      setTrainStatus(`Not accepted: ${await errorText(response)}`, true);
      return;
    }
    const body = await response.json();
    startTraining({
      name: body.name || name,
      jobId: body.job && body.job.id,
      statusUrl: body.status_url || `/v1/styles/${encodeURIComponent(name)}`,
      previewUrl: body.preview_url || `/v1/styles/${encodeURIComponent(name)}/training-preview`,
    });
  } catch (err) {
    setTrainStatus(`Upload failed: ${err}`, true);
  } finally {
    updateTrainActions();
  }
}

function startTraining(info) {
  const t = state.training;
  Object.assign(t, info);
  localStorage.setItem("restyle-training", JSON.stringify(info));
  $("new-style-progress").hidden = false;
  $("new-style-progress").value = 0;
  setTrainStatus(`Training “${t.name}”: queued…`);
  updateTrainActions();
  pollTraining();
}

function stopTraining() {
  const t = state.training;
  clearTimeout(t.timer);
  t.statusUrl = null;
  t.jobId = null;
  localStorage.removeItem("restyle-training");
  updateTrainActions();
}

async function refreshTrainingPreview(step) {
  const t = state.training;
  const name = t.name;
  try {
    const sep = t.previewUrl.includes("?") ? "&" : "?";
    const response = await api(`${t.previewUrl}${sep}step=${encodeURIComponent(step ?? "")}`, { cache: "no-store" });
    if (!response.ok) return; // 404 until the first preview exists
    const url = URL.createObjectURL(await response.blob());
    if (t.name !== name || !(await showImage($("training-preview"), url))) {
      URL.revokeObjectURL(url);
      return;
    }
    if (t.previewObj) URL.revokeObjectURL(t.previewObj);
    t.previewObj = url;
    $("training-hint").hidden = true;
    $("training-caption").textContent = step != null ? `“${name}” after step ${step}` : `“${name}”`;
  } catch {
    /* the next poll tries again */
  }
}

async function pollTraining() {
  const t = state.training;
  if (!t.statusUrl) return;
  const url = t.statusUrl;
  let body;
  try {
    const response = await api(url, { cache: "no-store" });
    if (t.statusUrl !== url) return;
    if (response.status === 404) {
      stopTraining();
      setTrainStatus(`The server no longer knows the style “${t.name}”.`, true);
      return;
    }
    if (!response.ok) {
      setTrainStatus(`Could not read the training state: ${await errorText(response)}; retrying…`, true);
      t.timer = setTimeout(pollTraining, POLL_MS * 3);
      return;
    }
    body = await response.json();
  } catch (err) {
    setTrainStatus(`Lost the server (${err}); retrying…`, true);
    t.timer = setTimeout(pollTraining, POLL_MS * 3);
    return;
  }
  if (body.job_id) t.jobId = body.job_id;
  const progress = Math.max(0, Math.min(1, Number(body.progress) || 0));
  const bar = $("new-style-progress");
  bar.hidden = false;
  bar.value = body.state === "ready" ? 1 : progress;
  const stepText = body.steps ? `step ${body.step || 0} / ${body.steps}, ` : "";
  if (body.preview_url) t.previewUrl = body.preview_url;
  if (body.step !== t.step && body.state !== "queued") {
    t.step = body.step;
    refreshTrainingPreview(body.step);
  }
  if (body.state === "queued") setTrainStatus(`Training “${t.name}”: queued, waiting for a worker…`);
  else if (body.state === "running") setTrainStatus(`Training “${t.name}”: ${stepText}${Math.round(progress * 100)}%`);
  else if (body.state === "ready" || body.state === "succeeded") {
    const names = await loadStyles(t.name);
    if (names && names.has(t.name)) {
      refreshTrainingPreview(body.step);
      const name = t.name;
      stopTraining();
      bar.value = 1;
      setTrainStatus(`“${name}” is ready and selected on the Photo tab.`);
      $("new-style-use").hidden = false;
      $("new-style-name").value = "";
      updateTrainActions();
      return;
    }
    setTrainStatus(`Training “${t.name}”: finishing…`);
  } else {
    const name = t.name;
    stopTraining();
    const why = body.state === "cancelled" ? "cancelled" : `failed: ${body.error || "no reason given"}`;
    setTrainStatus(`Training “${name}” ${why}`.replace(/\s+/g, " "), body.state !== "cancelled");
    return;
  }
  updateTrainActions();
  t.timer = setTimeout(pollTraining, POLL_MS);
}

async function cancelTraining() {
  const t = state.training;
  if (!t.jobId) return;
  $("new-style-cancel").disabled = true;
  try {
    // Style training runs in the same job system as video jobs.
    const response = await api(`/v1/jobs/${encodeURIComponent(t.jobId)}/cancel`, { method: "POST" });
    if (!response.ok) setTrainStatus(`Could not cancel: ${await errorText(response)}`, true);
    else setTrainStatus(`Cancelling “${t.name}”…`);
  } catch (err) {
    setTrainStatus(`Could not cancel: ${err}`, true);
  }
  updateTrainActions();
}

function initNewStyle() {
  $("new-style-name").addEventListener("input", updateTrainActions);
  $("new-style-image").addEventListener("change", () => {
    setNewStyleImage($("new-style-image").files[0] || null);
    $("new-style-image").value = "";
  });
  $("new-style-form").addEventListener("submit", submitStyle);
  $("new-style-cancel").addEventListener("click", cancelTraining);
  $("new-style-use").addEventListener("click", () => selectTab($("tab-photo"), true));
  const pending = localStorage.getItem("restyle-training");
  if (pending) {
    try {
      const info = JSON.parse(pending);
      if (info && info.statusUrl && info.name) startTraining(info);
    } catch {
      localStorage.removeItem("restyle-training");
    }
  }
  updateTrainActions();
}

// -- start ------------------------------------------------------------------------------------------------
function init() {
  $("api-key").value = localStorage.getItem("restyle-api-key") || "";
  $("api-key").addEventListener("change", () => loadStyles());
  initTabs();
  initPhoto();
  initDrop();
  initVideo();
  initNewStyle();
  updatePhotoActions();
  loadStyles();
}

document.addEventListener("DOMContentLoaded", init);
