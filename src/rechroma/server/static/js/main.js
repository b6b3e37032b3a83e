// rechroma's page: uploads and their queue, the strip of photos, and which one the editor
// shows. Plain JavaScript modules, no build step and no network beyond this server.
import {
  $, fail, finished, oversize, request, save, server, setStatus, shared,
} from "./common.js";
import {
  THUMB_SIDE, createPanel, drawThumbnail, fit, openPanel, resultAt, setVividness, showResult,
} from "./editor.js";
import { pinsFromReference } from "./pins.js";
import { colorizeVideo, isVideo, videoPanel } from "./video.js";
import { makeZip } from "./zip.js";

const PARALLEL_UPLOADS = 2;
const PHONE = matchMedia("(max-width: 600px)");

const items = [];
const queue = [];
let running = 0;
let current = null; // the item the editor shows

const downloadAll = $("#download-all");

function addFiles(files) {
  if (!files.length) return;
  $("#results-panel").hidden = false;
  $("#upload").classList.add("compact");
  $(".drop-text").textContent = "Drop more photos or clips here, or";
  const firstNew = items.length;
  for (const file of files) {
    const item = {
      file, name: file.name || (isVideo(file) ? "clip" : "photo"), video: isVideo(file),
      blob: null, blobName: null, pixels: null, pins: [], history: [], hintRun: 0, strokes: [],
      added: performance.now(),
    };
    item.card = $("#card-template").content.firstElementChild.cloneNode(true);
    $(".name", item.card).textContent = item.name;
    const open = $(".card-open", item.card);
    open.setAttribute("aria-label", `Open ${item.name} in the editor`);
    open.addEventListener("click", () => openItem(item, true));
    $(".retry", item.card).addEventListener("click", () => retry(item));
    $(".remove", item.card).addEventListener("click", () => removeItem(item));
    if (item.video) videoPanel(item);
    else createPanel(item);
    item.el.hidden = true;
    $("#results").append(item.card);
    items.push(item);
    drawUpload(item);
    const limit = item.video ? server.limits?.max_video_mb : server.limits?.max_file_mb;
    const tooLarge = oversize(file, limit, item.video ? "clips" : "photos");
    if (tooLarge) fail(item, tooLarge, false);
    else if (item.video) colorizeVideo(item).finally(updateDownloadAll);
    else queue.push(item);
  }
  // Take the person to what they just added: on a phone it is far below the upload box.
  const first = items[firstNew];
  if (first) first.card.scrollIntoView({ behavior: "smooth", block: "nearest" });
  pump();
}

// The card's picture while the photo is on its way: the upload itself, where the browser
// can read it (not TIFF).
async function drawUpload(item) {
  if (item.video) return;
  try {
    // Decoded straight to thumbnail width: no full-size bitmap of a scan held for a card.
    drawThumbnail(item, await createImageBitmap(item.file, { resizeWidth: THUMB_SIDE }));
  } catch (error) { /* the card stays blank until the colour version arrives */ }
}

function retry(item) {
  $(".error", item.card).hidden = $(".failed-actions", item.card).hidden = true;
  const bar = $("progress", item.card);
  bar.hidden = false;
  bar.value = 0;
  setStatus(item, "Waiting…");
  queue.push(item);
  pump();
}

function removeItem(item) {
  item.card.remove();
  item.el.remove();
  items.splice(items.indexOf(item), 1);
  if (current === item) {
    current = null;
    closeEditor();
    const next = items.find((entry) => entry.blob);
    if (next) openItem(next);
  }
  updateDownloadAll();
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

async function colorize(item) {
  const bar = $("progress", item.card);
  setStatus(item, "Uploading…");
  try {
    const result = await request(item.file, {}, (share) => {
      bar.value = Math.round(share * 90);
      if (share >= 1) setStatus(item, "Colorizing…");
    });
    item.blob = result.blob;
    item.blobName = result.name;
    await showResult(item);
    finished(item);
  } catch (error) {
    // Busy, timed out, lost or broken on the server's side: another try may work. A file
    // that is not a photo, or too large, will fail the same way again.
    const status = error.status ?? 0;
    fail(item, error.message, status === 0 || status === 408 || status === 429 || status >= 500);
  }
}

// ---- Which photo the editor shows.

// The first result to arrive opens by itself; later ones wait in the strip.
shared.onFinished = (item) => {
  if (!current) openItem(item, false);
};

// On a phone the editor takes the whole screen, with a way back to the strip; on larger
// screens it is brought into view (the first result's photo in full, not cut by the fold).
function openItem(item, chosen) {
  if (!item.blob) return; // still on its way, or failed: its card says which
  current = item;
  for (const entry of items) {
    $(".card-open", entry.card).setAttribute("aria-current", String(entry === item));
  }
  const host = $("#editor");
  openPanel(item);
  if (PHONE.matches) {
    host.classList.add("takeover");
    document.body.classList.add("editing");
    fit(item);
    $(".close-editor", item.el).focus({ preventScroll: true });
  } else {
    host.scrollIntoView({ behavior: "smooth", block: chosen ? "nearest" : "start" });
  }
}

// Back to the strip. On a phone the editor closes (a card opens it again); on a larger
// screen it stays above the strip, empty only when no photo is left.
function closeEditor() {
  const host = $("#editor");
  host.classList.remove("takeover");
  document.body.classList.remove("editing");
  if (document.fullscreenElement) document.exitFullscreen();
  if (!current || PHONE.matches) host.hidden = true;
}

document.addEventListener("click", (event) => {
  if (!event.target.closest(".close-editor")) return;
  closeEditor();
  if (current) current.card.scrollIntoView({ block: "nearest" });
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && $("#editor").classList.contains("takeover")) closeEditor();
});

shared.refit = () => { if (current && !current.video) fit(current); };
shared.applyVividness = (value) => {
  shared.vividness = value;
  for (const item of items) if (!item.video) setVividness(item, value);
};
// One photo's colours, as shown (its pins and vividness too), become the reference of every
// other finished photo: they get pins where it matches them.
shared.useAsReference = async (source) => {
  const shown = $(".after", source.el);
  const reference = await new Promise((done) => shown.toBlob(done, "image/png"));
  const others = items.filter((item) => item !== source && item.blob && !item.video);
  setStatus(source, others.length
    ? `Its colours go to ${others.length} other photo${others.length > 1 ? "s" : ""}`
    : "Add more photos: this one's colours then go to them");
  await Promise.all(others.map((item) => pinsFromReference(item, reference)));
};

// ---- Downloads.

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
    save(makeZip(files), "rechroma-colour.zip");
  } finally {
    updateDownloadAll();
  }
});

// ---- Files in: the picker, drag and drop anywhere, the samples.

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
    server.takesHints = Boolean(health.takes_hints);
    server.restores = Boolean(health.restores);
    for (const item of items) {
      if (!item.pixels) continue;
      $(".repair", item.el).hidden = !server.restores;
      $(".hints", item.el).hidden = !server.takesHints;
    }
    const limits = (server.limits = health.limits);
    $("#limits").textContent =
      `JPEG, PNG, TIFF, WebP, GIF or BMP; up to ${limits.max_files} photos at once, ` +
      `${Math.round(limits.max_file_mb)} MB and ${Math.round(limits.max_megapixels)} megapixels each.`;
    $("#video-limits").textContent =
      `Clips: MP4, MOV, MKV, AVI or WebM, up to ${Math.round(limits.max_video_seconds)} s and ` +
      `${Math.round(limits.max_video_mb)} MB; the sound is kept.`;
  })
  .catch(() => { /* the static hint stays */ });
