// rechroma's page: upload photos, show before/after, adjust vividness, download.
// Plain JavaScript, no build step and no network beyond this server.
"use strict";

const PARALLEL_UPLOADS = 2;
const PREVIEW_MAX_SIDE = 1600; // pixels of the on-screen preview; downloads are full size
// While pins are edited, a gray copy this large goes to the server, never the full photo:
// the network sees the same render size either way, and a click answers in a blink.
const EDIT_MAX_SIDE = 800;
const HINT_DELAY_MS = 50; // let a drag or a burst of key presses settle first

let takesHints = false;
let restores = false; // the server has a defect detector
let limits = null; // the server's, from /api/health: files over them are never sent

const items = [];
let queue = [];
let running = 0;

const $ = (selector, root = document) => root.querySelector(selector);
const vividnessInput = $("#vividness");
const downloadAll = $("#download-all");

function vividness() {
  return Number(vividnessInput.value);
}

function addFiles(files) {
  if (!files.length) return;
  $("#results-panel").hidden = false;
  const firstNew = items.length;
  for (const file of files) {
    if (isVideo(file)) {
      addVideo(file);
      continue;
    }
    const item = {
      file, name: file.name || "photo", blob: null, blobName: null, pixels: null,
      pins: [], history: [], hintRun: 0, strokes: [],
    };
    item.el = $("#result-template").content.firstElementChild.cloneNode(true);
    $(".name", item.el).textContent = item.name;
    $(".download", item.el).addEventListener("click", () => downloadOne(item));
    const compare = $(".compare", item.el);
    $(".slider", compare).addEventListener("input", (event) => {
      compare.style.setProperty("--split", `${event.target.value}%`);
    });
    setUpHints(item);
    setUpRepair(item);
    $(".retry", item.el).addEventListener("click", () => {
      $(".error", item.el).hidden = $(".failed-actions", item.el).hidden = true;
      const bar = $("progress", item.el);
      bar.hidden = false;
      bar.value = 0;
      setStatus(item, "Waiting…");
      queue.push(item);
      pump();
    });
    $(".remove", item.el).addEventListener("click", () => {
      item.el.remove();
      items.splice(items.indexOf(item), 1);
      updateDownloadAll();
    });
    $("#results").append(item.el);
    items.push(item);
    const tooLarge = oversize(file, limits && limits.max_file_mb, "photos");
    if (tooLarge) fail(item, tooLarge, false);
    else queue.push(item);
  }
  // Take the person to what they just added: on a phone it is far below the upload box.
  const first = items[firstNew];
  if (first) first.el.scrollIntoView({ behavior: "smooth", block: "start" });
  pump();
}

// Why a file is over the server's size limit (a sentence), or null when it is not.
function oversize(file, maxMegabytes, kind) {
  if (!maxMegabytes || file.size <= maxMegabytes * 2 ** 20) return null;
  const size = (file.size / 2 ** 20).toFixed(1);
  return `This file is ${size} MB; this server takes ${kind} up to ${Math.round(maxMegabytes)} MB.`;
}

// A card that failed shows why, and what can still be done: try again (when another try
// could go otherwise) or remove it.
function fail(item, message, retry = true) {
  $("progress", item.el).hidden = true;
  setStatus(item, "Failed");
  const error = $(".error", item.el);
  error.textContent = message;
  error.hidden = false;
  const actions = $(".failed-actions", item.el);
  if (!actions) return; // clips' cards have none yet
  actions.hidden = false;
  $(".retry", item.el).hidden = !retry;
}

function pump() {
  while (running < PARALLEL_UPLOADS && queue.length) {
    const item = queue.shift();
    running++;
    colorize(item).finally(() => {
      running--;
      updateDownloadAll();
      pump();
    });
  }
}

function setStatus(item, text) {
  $(".status", item.el).textContent = text;
}

// POST one file; resolves to {blob, name} or rejects with a readable message.
function request(file, options = {}, onProgress = null, route = "/api/colorize") {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name || "photo");
    for (const [key, value] of Object.entries(options)) {
      if (value instanceof Blob) form.append(key, value, `${key}.png`);
      else form.append(key, String(value));
    }
    const xhr = new XMLHttpRequest();
    xhr.open("POST", route);
    xhr.responseType = "blob";
    if (onProgress) xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    xhr.onload = async () => {
      if (xhr.status === 200) {
        const disposition = xhr.getResponseHeader("Content-Disposition") || "";
        const match = disposition.match(/filename="([^"]+)"/);
        resolve({ blob: xhr.response, name: match ? match[1] : "colour.png" });
        return;
      }
      let detail = `the server answered ${xhr.status}`;
      try {
        detail = JSON.parse(await xhr.response.text()).detail || detail;
      } catch (error) { /* not JSON: keep the status line */ }
      if (xhr.status === 503) detail = "The server is busy; please try again in a few seconds.";
      reject(Object.assign(new Error(detail), { status: xhr.status }));
    };
    xhr.onerror = () => reject(Object.assign(
      new Error("The connection to the server failed: is it still running?"), { status: 0 }));
    xhr.send(form);
  });
}

async function colorize(item) {
  const bar = $("progress", item.el);
  setStatus(item, "Uploading…");
  try {
    const result = await request(item.file, {}, (share) => {
      bar.value = Math.round(share * 90);
      if (share >= 1) setStatus(item, "Colorizing…");
    });
    item.blob = result.blob;
    item.blobName = result.name;
    await showResult(item);
    bar.value = 100;
    setStatus(item, "Done");
    $(".download", item.el).hidden = false;
  } catch (error) {
    // Busy, timed out, lost or broken on the server's side: another try may work. A file
    // that is not a photo, or too large, will fail the same way again.
    const status = error.status ?? 0;
    fail(item, error.message, status === 0 || status === 408 || status === 429 || status >= 500);
  }
}

// Draw the result, keep its pixels and their luma, and make the gray "before" image.
async function showResult(item, keepBefore = false) {
  const bitmap = await createImageBitmap(item.blob);
  item.fullWidth = bitmap.width;
  item.fullHeight = bitmap.height;
  const scale = Math.min(1, PREVIEW_MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = $(".after", item.el);
  canvas.width = width;
  canvas.height = height;
  canvas.setAttribute("aria-label", `Colour version of ${item.name}`);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0, width, height);
  item.pixels = context.getImageData(0, 0, width, height);
  item.automatic = item.pixels; // the model's own colours: where a new pin's colour starts
  const gray = new ImageData(width, height);
  const source = item.pixels.data;
  item.luma = new Float32Array(width * height);
  for (let i = 0, p = 0; i < source.length; i += 4, p++) {
    const y = 0.299 * source[i] + 0.587 * source[i + 1] + 0.114 * source[i + 2];
    item.luma[p] = y;
    gray.data[i] = gray.data[i + 1] = gray.data[i + 2] = y;
    gray.data[i + 3] = source[i + 3];
  }
  const grayCanvas = document.createElement("canvas");
  grayCanvas.width = width;
  grayCanvas.height = height;
  grayCanvas.getContext("2d").putImageData(gray, 0, 0);
  if (!keepBefore) {
    // "Before" is the upload itself (a sepia print stays sepia), also once its repaired
    // colour version is shown; the result's gray only where the browser cannot show the
    // file (TIFF, HEIC).
    const before = $(".before", item.el);
    const gray = URL.createObjectURL(await new Promise((done) => grayCanvas.toBlob(done)));
    before.onerror = () => {
      before.onerror = null;
      before.src = gray;
    };
    before.src = URL.createObjectURL(item.file);
    before.alt = `Original of ${item.name}`;
  }
  item.editCopy = await editCopy(grayCanvas);
  $(".compare", item.el).hidden = false;
  $(".hints", item.el).hidden = !takesHints;
  $(".repair", item.el).hidden = !restores;
  renderVividness(item);
}

// The small gray copy pins are tried on (the colour result's luma is the photo's).
function editCopy(grayCanvas) {
  const scale = Math.min(1, EDIT_MAX_SIDE / Math.max(grayCanvas.width, grayCanvas.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(grayCanvas.width * scale));
  canvas.height = Math.max(1, Math.round(grayCanvas.height * scale));
  canvas.getContext("2d").drawImage(grayCanvas, 0, 0, canvas.width, canvas.height);
  return new Promise((done) => canvas.toBlob((blob) => done({
    file: new File([blob], "edit.png"), width: canvas.width, height: canvas.height,
  }), "image/png"));
}

function setPixels(item, pixels) {
  item.pixels = pixels;
  const source = pixels.data;
  for (let i = 0, p = 0; i < source.length; i += 4, p++) {
    item.luma[p] = 0.299 * source[i] + 0.587 * source[i + 1] + 0.114 * source[i + 2];
  }
  renderVividness(item);
}

// Preview only: scale each pixel's distance from its gray (Cb and Cr around neutral).
// Downloads at another vividness are rendered again by the server, gamut-clamped.
function renderVividness(item) {
  if (!item.pixels) return;
  const factor = vividness();
  const source = item.pixels.data;
  const out = new ImageData(item.pixels.width, item.pixels.height);
  const target = out.data;
  for (let i = 0, p = 0; i < source.length; i += 4, p++) {
    const y = item.luma[p];
    target[i] = y + factor * (source[i] - y);
    target[i + 1] = y + factor * (source[i + 1] - y);
    target[i + 2] = y + factor * (source[i + 2] - y);
    target[i + 3] = source[i + 3];
  }
  $(".after", item.el).getContext("2d").putImageData(out, 0, 0);
}

// The result at the current vividness: the cached one at 1, else rendered again.
async function resultAt(item) {
  const factor = vividness();
  if (factor === 1 && !item.pins.length && !item.maskStale) {
    return { blob: item.blob, name: item.blobName };
  }
  const options = { vividness: factor };
  if (item.restore) options.restore = true;
  if (item.restore && item.maskEdited) options.mask = await maskBlob(item);
  else if (item.restore) withThreshold(item, options);
  if (item.pins.length) options.hints = hintsJson(item, item.fullWidth, item.fullHeight);
  return request(item.file, options);
}

// ---- Colour pins: hints the person gives, tried on a small copy, applied at full size.

// The hints as the CLI and the API read them, in pixels of a width x height image.
function hintsJson(item, width, height) {
  const hints = item.pins.map((pin) => ({
    x: Math.min(width - 1, Math.round(pin.fx * width * 10) / 10),
    y: Math.min(height - 1, Math.round(pin.fy * height * 10) / 10),
    color: pin.color,
  }));
  return JSON.stringify({ hints }, null, 2);
}

function hex(r, g, b) {
  return "#" + [r, g, b].map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
}

// The colour the model chose at a point (fractions of the width and height).
function modelColour(item, fx, fy) {
  const { width, height, data } = item.automatic;
  const x = Math.min(width - 1, Math.floor(fx * width));
  const y = Math.min(height - 1, Math.floor(fy * height));
  const i = 4 * (y * width + x);
  return hex(data[i], data[i + 1], data[i + 2]);
}

function changePins(item, change) {
  item.history.push(JSON.stringify(item.pins));
  change(item.pins);
  pinsChanged(item);
}

function pinsChanged(item, focusIndex = null) {
  drawPins(item, focusIndex);
  $(".undo", item.el).disabled = !item.history.length;
  $(".export", item.el).disabled = !item.pins.length;
  clearTimeout(item.hintTimer);
  item.hintTimer = setTimeout(() => applyPins(item), HINT_DELAY_MS);
}

async function applyPins(item) {
  const run = ++item.hintRun;
  const started = performance.now();
  setStatus(item, item.pins.length ? "Applying your colours…" : "Back to the model's colours…");
  try {
    let pixels = item.automatic;
    if (item.pins.length) {
      const copy = item.editCopy;
      const result = await request(copy.file, {
        format: "jpeg", hints: hintsJson(item, copy.width, copy.height),
      });
      const bitmap = await createImageBitmap(result.blob);
      const canvas = document.createElement("canvas");
      canvas.width = item.pixels.width;
      canvas.height = item.pixels.height;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      pixels = context.getImageData(0, 0, canvas.width, canvas.height);
    }
    if (run !== item.hintRun) return; // a newer edit is on its way
    setPixels(item, pixels);
    const ms = Math.round(performance.now() - started);
    item.el.dataset.hintMs = String(ms);
    item.el.dataset.hintRuns = String(run);
    setStatus(item, item.pins.length ? `Done (${item.pins.length} pins, ${ms} ms)` : "Done");
  } catch (error) {
    if (run === item.hintRun) setStatus(item, `Hints failed: ${error.message}`);
  }
}

function drawPins(item, focusIndex) {
  const layer = $(".pins", item.el);
  const list = $(".pin-list", item.el);
  layer.replaceChildren();
  list.replaceChildren();
  item.pins.forEach((pin, index) => {
    const where = () =>
      `${Math.round(pin.fx * item.fullWidth)}, ${Math.round(pin.fy * item.fullHeight)}`;
    const marker = document.createElement("button");
    marker.type = "button";
    marker.className = "pin";
    marker.style.left = `${pin.fx * 100}%`;
    marker.style.top = `${pin.fy * 100}%`;
    marker.style.background = pin.color;
    marker.setAttribute("aria-label",
      `Colour pin ${index + 1} at ${where()}, ${pin.color}: arrow keys move it, Delete removes it`);
    marker.addEventListener("keydown", (event) => pinKey(item, index, event));
    marker.addEventListener("pointerdown", (event) => dragPin(item, index, marker, event));
    layer.append(marker);

    const row = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = `Pin ${index + 1} at ${where()}`;
    const picker = document.createElement("input");
    picker.type = "color";
    picker.value = pin.color;
    picker.setAttribute("aria-label", `Colour of pin ${index + 1}`);
    picker.addEventListener("change", () => changePins(item, (pins) => {
      pins[index] = { ...pins[index], color: picker.value };
    }));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button-light";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove pin ${index + 1}`);
    remove.addEventListener("click", () => changePins(item, (pins) => pins.splice(index, 1)));
    row.append(label, picker, remove);
    list.append(row);
  });
  if (focusIndex !== null && layer.children[focusIndex]) layer.children[focusIndex].focus();
}

function pinKey(item, index, event) {
  const step = event.shiftKey ? 0.05 : 0.01;
  const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
  if (event.key in moves) {
    event.preventDefault();
    const [dx, dy] = moves[event.key];
    item.history.push(JSON.stringify(item.pins));
    const pin = item.pins[index];
    pin.fx = Math.min(0.999, Math.max(0, pin.fx + dx));
    pin.fy = Math.min(0.999, Math.max(0, pin.fy + dy));
    pinsChanged(item, index);
  } else if (event.key === "Delete" || event.key === "Backspace") {
    event.preventDefault();
    changePins(item, (pins) => pins.splice(index, 1));
    $(".pin-mode", item.el).focus();
  }
}

function dragPin(item, index, marker, event) {
  event.preventDefault();
  event.stopPropagation();
  const box = $(".after", item.el).getBoundingClientRect();
  const before = JSON.stringify(item.pins);
  marker.setPointerCapture(event.pointerId);
  const move = (moveEvent) => {
    const pin = item.pins[index];
    pin.fx = Math.min(0.999, Math.max(0, (moveEvent.clientX - box.left) / box.width));
    pin.fy = Math.min(0.999, Math.max(0, (moveEvent.clientY - box.top) / box.height));
    marker.style.left = `${pin.fx * 100}%`;
    marker.style.top = `${pin.fy * 100}%`;
  };
  marker.addEventListener("pointermove", move);
  marker.addEventListener("pointerup", () => {
    marker.removeEventListener("pointermove", move);
    if (JSON.stringify(item.pins) !== before) {
      item.history.push(before);
      pinsChanged(item, index);
    }
  }, { once: true });
}

function setUpHints(item) {
  const compare = $(".compare", item.el);
  const mode = $(".pin-mode", item.el);
  mode.addEventListener("click", () => {
    const on = mode.getAttribute("aria-pressed") !== "true";
    mode.setAttribute("aria-pressed", String(on));
    compare.classList.toggle("placing", on);
  });
  // By keyboard: on the photo (its slider has the focus), Enter adds a pin in the middle
  // and focuses it, to be moved with the arrow keys.
  $(".slider", compare).addEventListener("keydown", (event) => {
    if (!compare.classList.contains("placing") || event.key !== "Enter") return;
    event.preventDefault();
    item.history.push(JSON.stringify(item.pins));
    item.pins.push({ fx: 0.5, fy: 0.5, color: modelColour(item, 0.5, 0.5) });
    pinsChanged(item, item.pins.length - 1);
  });
  compare.addEventListener("click", (event) => {
    if (!compare.classList.contains("placing") || event.target.classList.contains("pin")) return;
    const box = $(".after", item.el).getBoundingClientRect();
    const fx = Math.min(0.999, Math.max(0, (event.clientX - box.left) / box.width));
    const fy = Math.min(0.999, Math.max(0, (event.clientY - box.top) / box.height));
    changePins(item, (pins) => pins.push({ fx, fy, color: modelColour(item, fx, fy) }));
  });
  $(".undo", item.el).addEventListener("click", () => {
    if (!item.history.length) return;
    item.pins = JSON.parse(item.history.pop());
    pinsChanged(item);
  });
  $(".export", item.el).addEventListener("click", () => {
    const json = hintsJson(item, item.fullWidth, item.fullHeight);
    const stem = item.name.replace(/\.[^.]*$/, "");
    save(new Blob([json], { type: "application/json" }), `${stem}-hints.json`);
  });
  $(".import-file", item.el).addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file) return;
    try {
      const data = JSON.parse(await file.text());
      const hints = Array.isArray(data) ? data : data.hints;
      if (!Array.isArray(hints)) throw new Error('expected {"hints": [...]}');
      const pins = hints.map((hint) => {
        const color = hexColour(hint.color);
        if (typeof hint.x !== "number" || typeof hint.y !== "number" || !color) {
          throw new Error("each hint needs numbers x, y and a colour like #2b4c9a or navy");
        }
        return { fx: hint.x / item.fullWidth, fy: hint.y / item.fullHeight, color };
      });
      if (pins.some((pin) => pin.fx < 0 || pin.fx >= 1 || pin.fy < 0 || pin.fy >= 1)) {
        throw new Error("a hint lies outside this photo");
      }
      changePins(item, (current) => current.splice(0, current.length, ...pins));
    } catch (error) {
      setStatus(item, `Cannot import hints: ${error.message}`);
    }
  });
}

// "#rrggbb" for a hint's colour as the command line takes it (#rrggbb, rrggbb, #rgb or a
// CSS name such as navy), or null. The browser's own CSS parser reads the names.
function hexColour(text) {
  if (typeof text !== "string") return null;
  const value = text.trim().toLowerCase();
  if (/^#?[0-9a-f]{6}$/.test(value)) return value.startsWith("#") ? value : `#${value}`;
  if (!/^#[0-9a-f]{3}$|^[a-z]+$/.test(value)) return null;
  const probe = document.createElement("canvas").getContext("2d");
  for (const sentinel of ["#000000", "#ffffff"]) {  // unchanged on both: not a colour
    probe.fillStyle = sentinel;
    probe.fillStyle = value;
    if (probe.fillStyle !== sentinel) return probe.fillStyle;
  }
  return null;
}

// ---- Repair: scratches, dust and cracks filled on the server before the colour goes on.

// The strength slider's steps: the detector's threshold for each (null: its own). Lower
// thresholds repair more: fainter cracks, but also more texture taken for damage.
const REPAIR_STRENGTHS = [
  { name: "very gentle", threshold: 0.8 },
  { name: "gentle", threshold: 0.6 },
  { name: "normal", threshold: null },
  { name: "strong", threshold: 0.25 },
  { name: "very strong", threshold: 0.12 },
];

// `options` with the strength's detector threshold added (none for "normal": the
// detector's own).
function withThreshold(item, options) {
  const { threshold } = REPAIR_STRENGTHS[Number($(".repair-strength", item.el).value)];
  if (threshold !== null) options.defects_threshold = threshold;
  return options;
}

function setUpRepair(item) {
  const toggle = $(".repair-toggle", item.el);
  const showMask = $(".mask-toggle", item.el);
  const strength = $(".repair-strength", item.el);
  const run = async () => {
    toggle.disabled = strength.disabled = true;
    item.restore = toggle.checked;
    setStatus(item, toggle.checked ? "Repairing…" : "Colorizing…");
    try {
      const options = item.restore ? withThreshold(item, { restore: true }) : {};
      const result = await request(item.file, options);
      item.blob = result.blob;
      item.blobName = result.name;
      await showResult(item, true);
      item.maskCanvas = null;
      item.maskEdited = item.maskStale = false;
      item.strokes = [];
      $(".mask-undo", item.el).disabled = true;
      if (item.restore) await repairMask(item);
      showMask.disabled = !item.restore;
      if (!item.restore) showMask.checked = false;
      $(".strength", item.el).hidden = !item.restore;
      describeRepair(item);
      drawMask(item, showMask.checked);
      $(".mask-tools", item.el).hidden = !showMask.checked;
      setStatus(item, "Done");
    } catch (error) {
      setStatus(item, `Repair failed: ${error.message}`);
    } finally {
      toggle.disabled = strength.disabled = false;
    }
  };
  toggle.addEventListener("change", run);
  strength.addEventListener("input", () => {
    const name = REPAIR_STRENGTHS[Number(strength.value)].name;
    $(".strength-name", item.el).textContent = name;
    strength.setAttribute("aria-valuetext", name);
  });
  strength.addEventListener("change", () => { if (item.restore) run(); });
  showMask.addEventListener("change", () => {
    drawMask(item, showMask.checked);
    $(".mask-tools", item.el).hidden = !showMask.checked;
    if (!showMask.checked) setPainting(item, false);
  });
  $(".mask-edit", item.el).addEventListener("click", (event) => {
    setPainting(item, event.currentTarget.getAttribute("aria-pressed") !== "true");
  });
  $(".mask-erase", item.el).addEventListener("click", (event) => {
    const button = event.currentTarget;
    button.setAttribute("aria-pressed", String(button.getAttribute("aria-pressed") !== "true"));
  });
  $(".mask-undo", item.el).addEventListener("click", () => {
    const previous = item.strokes.pop();
    if (!previous) return;
    item.maskCanvas.getContext("2d").putImageData(previous, 0, 0);
    $(".mask-undo", item.el).disabled = !item.strokes.length;
    item.maskEdited = item.maskStale = item.strokes.length > 0;
    drawMask(item, true);
    describeRepair(item);
  });
  setUpBrush(item);
}

// "12 scratches and 40 specks repaired", from the mask's connected regions at preview
// size: long thin regions are scratches and cracks, small round ones dust.
function describeRepair(item) {
  const found = $(".repair-found", item.el);
  found.hidden = !item.restore || !item.maskCanvas;
  if (found.hidden) return;
  const { scratches, specks, areas } = maskRegions(item.maskCanvas);
  if (!scratches && !specks && !areas) {
    found.textContent = "Nothing to repair was found. A stronger setting, or the brush, can add some.";
    return;
  }
  const parts = [];
  if (scratches) parts.push(`${scratches} scratch${scratches === 1 ? "" : "es"} or crack${scratches === 1 ? "" : "s"}`);
  if (specks) parts.push(`${specks} speck${specks === 1 ? "" : "s"} of dust`);
  if (areas) parts.push(`${areas} larger area${areas === 1 ? "" : "s"}`);
  const edited = item.maskEdited ? " (with your corrections)" : "";
  found.textContent = `${parts.join(", ")} repaired${edited}.`;
}

// Count the mask's 8-connected regions by shape. A flood fill over at most the preview's
// 1600 x 1600 pixels takes milliseconds.
function maskRegions(canvas) {
  const { width, height } = canvas;
  const data = canvas.getContext("2d", { willReadFrequently: true })
    .getImageData(0, 0, width, height).data;
  const seen = new Uint8Array(width * height);
  const stack = new Int32Array(width * height);
  let scratches = 0, specks = 0, areas = 0;
  const speckSide = Math.max(3, Math.round(Math.max(width, height) / 200));
  for (let start = 0; start < width * height; start++) {
    if (seen[start] || data[start * 4] <= 127) continue;
    let top = 0, size = 0;
    let left = width, right = 0, up = height, down = 0;
    stack[top++] = start;
    seen[start] = 1;
    while (top) {
      const p = stack[--top];
      const x = p % width, y = (p - x) / width;
      size++;
      if (x < left) left = x;
      if (x > right) right = x;
      if (y < up) up = y;
      if (y > down) down = y;
      for (let dy = -1; dy <= 1; dy++) {
        const ny = y + dy;
        if (ny < 0 || ny >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx, q = ny * width + nx;
          if (nx < 0 || nx >= width || seen[q] || data[q * 4] <= 127) continue;
          seen[q] = 1;
          stack[top++] = q;
        }
      }
    }
    const long = Math.max(right - left, down - up) + 1;
    const fill = size / ((right - left + 1) * (down - up + 1));
    if (long <= speckSide) specks++;
    else if (long >= 3 * Math.sqrt(size) || fill < 0.35) scratches++;
    else areas++;
  }
  return { scratches, specks, areas };
}

function setPainting(item, on) {
  $(".mask-edit", item.el).setAttribute("aria-pressed", String(on));
  $(".compare", item.el).classList.toggle("painting", on);
  $(".mask-help", item.el).hidden = !on;
}

// The brush: paints the mask at preview size; the server scales it to the full photo.
function setUpBrush(item) {
  const overlay = $(".mask-overlay", item.el);
  let painting = false;
  let last = null;
  // A stroke from the last point to this one, so a fast drag leaves no gaps.
  const paint = (event) => {
    const rect = overlay.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * item.maskCanvas.width;
    const y = ((event.clientY - rect.top) / rect.height) * item.maskCanvas.height;
    const width = (Number($(".brush-size", item.el).value) / rect.width) * item.maskCanvas.width;
    const context = item.maskCanvas.getContext("2d");
    const erase = $(".mask-erase", item.el).getAttribute("aria-pressed") === "true";
    context.strokeStyle = erase ? "#000" : "#fff";
    context.lineWidth = Math.max(1, width);
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    context.moveTo(...(last || [x, y]));
    context.lineTo(x, y);
    context.stroke();
    last = [x, y];
    drawMask(item, true);
  };
  overlay.addEventListener("pointerdown", (event) => {
    if (!item.maskCanvas) return;
    const { width, height } = item.maskCanvas;
    item.strokes.push(item.maskCanvas.getContext("2d").getImageData(0, 0, width, height));
    $(".mask-undo", item.el).disabled = false;
    painting = true;
    last = null;
    overlay.setPointerCapture(event.pointerId);
    paint(event);
  });
  overlay.addEventListener("pointermove", (event) => { if (painting) paint(event); });
  const finish = () => {
    if (!painting) return;
    painting = false;
    item.maskEdited = true;
    item.maskStale = true; // the cached result is the detector's repair, not this one
    describeRepair(item);
    setStatus(item, "Repairs corrected: the download uses them");
  };
  overlay.addEventListener("pointerup", finish);
  overlay.addEventListener("pointercancel", finish);
}

function maskBlob(item) {
  return new Promise((done) => item.maskCanvas.toBlob(done, "image/png"));
}

// The detector's repair mask, at preview size, into a canvas the brush can change.
async function repairMask(item) {
  const options = withThreshold(item, { answer: "mask" });
  const result = await request(item.file, options, null, "/api/restore");
  const bitmap = await createImageBitmap(result.blob);
  const after = $(".after", item.el);
  const canvas = document.createElement("canvas");
  canvas.width = after.width;
  canvas.height = after.height;
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  item.maskCanvas = canvas;
  return bitmap;
}

// Repaired pixels in red over the result, or nothing.
function drawMask(item, visible) {
  const overlay = $(".mask-overlay", item.el);
  overlay.hidden = !visible || !item.maskCanvas;
  if (overlay.hidden) return;
  overlay.width = item.maskCanvas.width;
  overlay.height = item.maskCanvas.height;
  const context = overlay.getContext("2d", { willReadFrequently: true });
  context.drawImage(item.maskCanvas, 0, 0);
  const pixels = context.getImageData(0, 0, overlay.width, overlay.height);
  const data = pixels.data;
  for (let i = 0; i < data.length; i += 4) {
    const on = data[i] > 127;
    data[i] = 255; data[i + 1] = 40; data[i + 2] = 40; data[i + 3] = on ? 200 : 0;
  }
  context.putImageData(pixels, 0, 0);
}

function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

async function downloadOne(item) {
  const button = $(".download", item.el);
  button.disabled = true;
  try {
    const result = await resultAt(item);
    save(result.blob, result.name);
  } catch (error) {
    setStatus(item, `Download failed: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function updateDownloadAll() {
  downloadAll.disabled =
    !items.some((item) => item.blob && !item.video) || running > 0 || queue.length > 0;
}

downloadAll.addEventListener("click", async () => {
  downloadAll.disabled = true;
  try {
    const files = [];
    for (const item of items.filter((entry) => entry.blob && !entry.video)) {
      const result = await resultAt(item);
      files.push({ name: result.name, bytes: new Uint8Array(await result.blob.arrayBuffer()) });
    }
    save(window.makeZip(files), "rechroma-colour.zip");
  } finally {
    updateDownloadAll();
  }
});

vividnessInput.addEventListener("input", () => {
  $("#vividness-value").textContent = vividness().toFixed(2);
  for (const item of items) renderVividness(item);
});

$("#files").addEventListener("change", (event) => {
  addFiles([...event.target.files]);
  event.target.value = "";
});

const drop = $("#drop");
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, (event) => {
    event.preventDefault();
    if (type === "drop" || event.target === document.documentElement) drop.classList.remove("over");
  });
}
document.addEventListener("drop", (event) => addFiles([...event.dataTransfer.files]));

for (const button of document.querySelectorAll(".sample")) {
  button.addEventListener("click", async () => {
    const response = await fetch(button.dataset.src);
    const blob = await response.blob();
    const name = button.dataset.src.split("/").pop();
    addFiles([new File([blob], name, { type: blob.type || "image/jpeg" })]);
  });
}

// ---- Film clips: queued on the server as a job, polled, then played beside the original.

const VIDEO_EXTENSIONS = /\.(mp4|m4v|mov|mkv|avi|webm)$/i;
const POLL_MS = 500;

function isVideo(file) {
  return (file.type || "").startsWith("video/") || VIDEO_EXTENSIONS.test(file.name || "");
}

function addVideo(file) {
  const item = { file, name: file.name || "clip", video: true };
  item.el = $("#video-template").content.firstElementChild.cloneNode(true);
  $(".name", item.el).textContent = item.name;
  $("#results").append(item.el);
  items.push(item);
  const tooLarge = oversize(file, limits && limits.max_video_mb, "clips");
  if (tooLarge) fail(item, tooLarge, false);
  else colorizeVideo(item);
}

// The browser's own player decides the format: H.264 where it plays, else VP9 in WebM.
function videoFormat() {
  const probe = document.createElement("video");
  return probe.canPlayType('video/mp4; codecs="avc1.64001F"') ? "mp4" : "webm";
}

function submitVideo(item) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", item.file, item.name);
    form.append("format", videoFormat());
    form.append("vividness", String(vividness()));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/videos");
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      $("progress", item.el).value = Math.round(20 * event.loaded / event.total);
      setStatus(item, `Uploading… ${Math.round(100 * event.loaded / event.total)}%`);
    };
    xhr.onload = () => {
      if (xhr.status === 202) resolve(xhr.response);
      else reject(new Error((xhr.response && xhr.response.detail) || `HTTP ${xhr.status}`));
    };
    xhr.onerror = () => reject(new Error("the server could not be reached"));
    xhr.send(form);
  });
}

async function colorizeVideo(item) {
  try {
    const job = await submitVideo(item);
    let status = job;
    while (status.state === "queued" || status.state === "running") {
      await new Promise((wake) => setTimeout(wake, POLL_MS));
      const response = await fetch(`/api/videos/${job.id}`);
      status = await response.json();
      if (!response.ok) throw new Error(status.detail || `HTTP ${response.status}`);
      if (status.state === "queued") setStatus(item, "Waiting for the clips before it…");
      if (status.state === "running") {
        const total = status.frames_total ? ` of ${status.frames_total}` : "";
        setStatus(item, `Colorizing: frame ${status.frames_done}${total}`);
        $("progress", item.el).value = 20 + Math.round(80 * (status.progress || 0));
      }
    }
    if (status.state !== "done") throw new Error(status.detail || "the clip failed");
    const response = await fetch(status.result_url);
    if (!response.ok) throw new Error(`download failed: HTTP ${response.status}`);
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = disposition.match(/filename="([^"]+)"/);
    item.blob = await response.blob();
    item.blobName = match ? match[1] : "clip-colour.mp4";
    showVideo(item);
  } catch (error) {
    const message = $(".error", item.el);
    message.textContent = `Could not colorize ${item.name}: ${error.message}`;
    message.hidden = false;
    setStatus(item, "Failed");
    $("progress", item.el).hidden = true;
  }
}

function showVideo(item) {
  const before = $(".video-before", item.el);
  const after = $(".video-after", item.el);
  before.src = URL.createObjectURL(item.file);
  after.src = URL.createObjectURL(item.blob);
  // One set of controls drives both: the original follows the colour clip.
  after.addEventListener("play", () => { before.currentTime = after.currentTime; before.play(); });
  after.addEventListener("pause", () => before.pause());
  after.addEventListener("seeked", () => { before.currentTime = after.currentTime; });
  $(".videos", item.el).hidden = false;
  $("progress", item.el).value = 100;
  setStatus(item, "Done");
  const download = $(".download", item.el);
  download.hidden = false;
  download.addEventListener("click", () => save(item.blob, item.blobName));
}

fetch("/api/health")
  .then((response) => response.json())
  .then((health) => {
    takesHints = Boolean(health.takes_hints);
    restores = Boolean(health.restores);
    for (const item of items) if (item.pixels) $(".repair", item.el).hidden = !restores;
    for (const item of items) if (item.pixels) $(".hints", item.el).hidden = !takesHints;
    limits = health.limits;
    $("#limits").textContent =
      `JPEG, PNG, TIFF, WebP, GIF or BMP; up to ${limits.max_files} photos at once, ` +
      `${Math.round(limits.max_file_mb)} MB and ${Math.round(limits.max_megapixels)} megapixels each.`;
    $("#video-limits").textContent =
      `Clips: MP4, MOV, MKV, AVI or WebM, up to ${Math.round(limits.max_video_seconds)} s and ` +
      `${Math.round(limits.max_video_mb)} MB; the sound is kept.`;
  })
  .catch(() => { /* the static hint stays */ });
