// rechroma's page: upload photos, show before/after, adjust vividness, download.
// Plain JavaScript, no build step and no network beyond this server.
"use strict";

const PARALLEL_UPLOADS = 2;
const PREVIEW_MAX_SIDE = 1600; // pixels of the on-screen preview; downloads are full size

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
  for (const file of files) {
    const item = { file, name: file.name || "photo", blob: null, blobName: null, pixels: null };
    item.el = $("#result-template").content.firstElementChild.cloneNode(true);
    $(".name", item.el).textContent = item.name;
    $(".download", item.el).addEventListener("click", () => downloadOne(item));
    const compare = $(".compare", item.el);
    $(".slider", compare).addEventListener("input", (event) => {
      compare.style.setProperty("--split", `${event.target.value}%`);
    });
    $("#results").append(item.el);
    items.push(item);
    queue.push(item);
  }
  pump();
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
function request(file, options = {}, onProgress = null) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    form.append("file", file, file.name || "photo");
    for (const [key, value] of Object.entries(options)) form.append(key, String(value));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/colorize");
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
      reject(new Error(detail));
    };
    xhr.onerror = () => reject(new Error("network error: is the server still running?"));
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
    bar.hidden = true;
    setStatus(item, "Failed");
    const message = $(".error", item.el);
    message.textContent = error.message;
    message.hidden = false;
  }
}

// Draw the result, keep its pixels and their luma, and make the gray "before" image.
async function showResult(item) {
  const bitmap = await createImageBitmap(item.blob);
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
  const before = $(".before", item.el);
  before.src = URL.createObjectURL(await new Promise((done) => grayCanvas.toBlob(done)));
  before.alt = `Original (gray) of ${item.name}`;
  $(".compare", item.el).hidden = false;
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
  if (factor === 1) return { blob: item.blob, name: item.blobName };
  return request(item.file, { vividness: factor });
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
  downloadAll.disabled = !items.some((item) => item.blob) || running > 0 || queue.length > 0;
}

downloadAll.addEventListener("click", async () => {
  downloadAll.disabled = true;
  try {
    const files = [];
    for (const item of items.filter((entry) => entry.blob)) {
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

fetch("/api/health")
  .then((response) => response.json())
  .then((health) => {
    const limits = health.limits;
    $("#limits").textContent =
      `JPEG, PNG, TIFF, WebP, GIF or BMP; up to ${limits.max_files} photos at once, ` +
      `${Math.round(limits.max_file_mb)} MB and ${Math.round(limits.max_megapixels)} megapixels each.`;
  })
  .catch(() => { /* the static hint stays */ });
