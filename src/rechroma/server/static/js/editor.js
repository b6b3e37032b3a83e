// The editor: one photo large, before/after divider with a handle, zoom and pan down to the
// scan's own pixels, full screen, and that photo's tools (vividness, pins, repair, download).
import Panzoom from "../vendor/panzoom/panzoom.es.js";
import { $, request, save, server, setStatus, shared } from "./common.js";
import { hintsJson, setUpHints } from "./pins.js";
import { maskBlob, setUpRepair, withThreshold } from "./repair.js";

const PREVIEW_MAX_SIDE = 1600; // pixels of the on-screen preview; downloads are full size
// While pins are edited, a gray copy this large goes to the server, never the full photo:
// the network sees the same render size either way, and a click answers in a blink.
const EDIT_MAX_SIDE = 800;
export const THUMB_SIDE = 160;
// Zoomed in this far past the preview's own pixels, the full-size result is fetched and
// shown instead, so a 12 MP scan can be judged pixel by pixel.
const DETAIL_AFTER = 1.1;
const DETAIL_DELAY_MS = 250;

const editor = () => document.getElementById("editor");

// The panel an item is edited in; built once, shown in the editor when the item is chosen.
export function createPanel(item) {
  item.el = $("#panel-template").content.firstElementChild.cloneNode(true);
  item.split = 0.5;
  item.vividness = shared.vividness;
  item.resultVersion = 0;
  item.maskVersion = 0;
  item.repairRun = 0;
  $(".name", item.el).textContent = item.name;
  $(".download", item.el).addEventListener("click", () => downloadOne(item));
  setUpDivider(item);
  setUpZoom(item);
  setUpVividness(item);
  setUpHints(item);
  setUpRepair(item);
}

// Put an item's panel in the editor (the only one shown there) and fit its photo.
export function openPanel(item) {
  const host = editor();
  for (const panel of host.children) panel.hidden = panel !== item.el;
  if (item.el.parentElement !== host) host.append(item.el);
  item.el.hidden = false;
  host.hidden = false;
  // Panzoom measures its element, so it starts once the panel is in the page.
  if (!item.video && !item.panzoom) {
    item.panzoom = Panzoom($(".content", item.el), {
      contain: "outside", minScale: 1, maxScale: 4, step: 0.4, cursor: "grab", animate: false,
    });
  }
  fit(item);
}

// ---- The result: drawn at preview size, with its luma for vividness and pins.

// Draw the result, keep its pixels and their luma, and set the "before" image.
export async function showResult(item, keepBefore = false) {
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
    // file (TIFF, HEIC), encoded only then.
    const before = $(".before", item.el);
    before.onerror = () => {
      before.onerror = null;
      grayCanvas.toBlob((blob) => { before.src = URL.createObjectURL(blob); });
    };
    before.src = URL.createObjectURL(item.file);
    before.alt = `Original of ${item.name}`;
  }
  // Pins' working copy is made from this gray when the first pin needs it, not before the
  // result is shown.
  item.grayCanvas = grayCanvas;
  item.editCopy = null;
  item.resultVersion++;
  $(".view", item.el).hidden = false;
  $(".toolbar", item.el).hidden = false;
  $(".hints", item.el).hidden = !server.takesHints;
  $(".repair", item.el).hidden = !server.restores;
  $(".download", item.el).hidden = false;
  renderVividness(item);
  if (!item.el.hidden && item.el.isConnected) fit(item);
}

// The small gray copy pins are tried on (the colour result's luma is the photo's), made
// once per result.
export function editCopy(item) {
  return (item.editCopy ??= encodeEditCopy(item.grayCanvas));
}

function encodeEditCopy(grayCanvas) {
  const scale = Math.min(1, EDIT_MAX_SIDE / Math.max(grayCanvas.width, grayCanvas.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.max(1, Math.round(grayCanvas.width * scale));
  canvas.height = Math.max(1, Math.round(grayCanvas.height * scale));
  canvas.getContext("2d").drawImage(grayCanvas, 0, 0, canvas.width, canvas.height);
  return new Promise((done) => canvas.toBlob((blob) => done({
    file: new File([blob], "edit.png"), width: canvas.width, height: canvas.height,
  }), "image/png"));
}

// The upload at preview size, for previews that need the original (a repair along the
// corrected mask), made once; the file itself where the browser cannot read it (TIFF).
export function previewUpload(item) {
  return (item.uploadCopy ??= encodePreviewUpload(item));
}

async function encodePreviewUpload(item) {
  try {
    const bitmap = await createImageBitmap(item.file);
    const canvas = document.createElement("canvas");
    canvas.width = item.pixels.width;
    canvas.height = item.pixels.height;
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((done) => canvas.toBlob(done, "image/jpeg", 0.95));
    return { file: new File([blob], "preview.jpg"), width: canvas.width, height: canvas.height };
  } catch (error) {
    return { file: item.file, width: item.fullWidth, height: item.fullHeight };
  }
}

// An answer from the server (a small copy's colour version), as pixels at preview size.
export async function previewPixels(item, blob) {
  const bitmap = await createImageBitmap(blob);
  const canvas = document.createElement("canvas");
  canvas.width = item.pixels.width;
  canvas.height = item.pixels.height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

export function setPixels(item, pixels) {
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
  const factor = item.vividness;
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
  const canvas = $(".after", item.el);
  canvas.getContext("2d").putImageData(out, 0, 0);
  drawThumbnail(item, canvas);
  refreshDetail(item);
}

// The card's small picture: the upload while it is colourized, then the colour version.
export function drawThumbnail(item, source) {
  const thumb = $(".thumb", item.card);
  const width = source.width, height = source.height;
  const scale = THUMB_SIDE / Math.max(width, height);
  thumb.width = Math.max(1, Math.round(width * scale));
  thumb.height = Math.max(1, Math.round(height * scale));
  thumb.getContext("2d").drawImage(source, 0, 0, thumb.width, thumb.height);
}

// The result at this photo's settings: the cached one at vividness 1, else rendered again.
export async function resultAt(item) {
  const factor = item.vividness;
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

// ---- Vividness, per photo, with "apply to all".

function setUpVividness(item) {
  const slider = $(".vividness", item.el);
  slider.value = String(item.vividness);
  $(".vividness-value", item.el).textContent = item.vividness.toFixed(2);
  slider.addEventListener("input", () => setVividness(item, Number(slider.value)));
  $(".apply-all", item.el).addEventListener("click", () => shared.applyVividness(item.vividness));
}

export function setVividness(item, value) {
  item.vividness = value;
  $(".vividness", item.el).value = String(value);
  $(".vividness-value", item.el).textContent = value.toFixed(2);
  renderVividness(item);
}

// ---- Layout, the before/after divider, zoom and pan.

// Fit the photo into the view: the whole width of the editor and at most three quarters of
// the window's height, or all of the screen when the editor fills it.
export function fit(item) {
  if (!item.pixels || item.el.hidden || !item.el.isConnected || !item.panzoom) return;
  const view = $(".view", item.el);
  const filling = document.fullscreenElement === editor() || editor().classList.contains("takeover");
  const width = view.clientWidth;
  const aspect = item.fullHeight / item.fullWidth;
  if (filling) view.style.height = "";
  else view.style.height = `${Math.max(48, Math.min(width * aspect, innerHeight * 0.75))}px`;
  const height = view.clientHeight;
  const scale = Math.min(width / item.fullWidth, height / item.fullHeight);
  const box = {
    width: item.fullWidth * scale, height: item.fullHeight * scale,
    left: (width - item.fullWidth * scale) / 2, top: (height - item.fullHeight * scale) / 2,
  };
  item.stage = box;
  item.fitScale = scale;
  for (const part of [$(".stage", item.el), $(".before-frame", item.el)]) {
    Object.assign(part.style, {
      left: `${box.left}px`, top: `${box.top}px`, width: `${box.width}px`, height: `${box.height}px`,
    });
  }
  // Down to two screen pixels per pixel of the scan, and at least 4x for small photos.
  item.panzoom.setOptions({ maxScale: Math.min(64, Math.max(4, 2 / (scale * devicePixelRatio))) });
  item.panzoom.reset({ animate: false });
  setSplit(item, item.split);
}

function setSplit(item, split) {
  item.split = Math.min(1, Math.max(0, split));
  const view = $(".view", item.el);
  const box = item.stage || { left: 0, width: view.clientWidth };
  view.style.setProperty("--split-px", `${box.left + item.split * box.width}px`);
  const handle = $(".handle", item.el);
  const percent = Math.round(item.split * 100);
  handle.setAttribute("aria-valuenow", String(percent));
  handle.setAttribute("aria-valuetext", `${percent}% of the original shown`);
}

// The divider moves by its handle (dragged, or by keys); the photo itself pans.
function setUpDivider(item) {
  const view = $(".view", item.el);
  const handle = $(".handle", item.el);
  const divider = $(".divider", item.el);
  let dragging = false;
  divider.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    event.stopPropagation();
    divider.setPointerCapture(event.pointerId);
    dragging = true;
    handle.focus();
  });
  divider.addEventListener("pointermove", (event) => {
    if (!dragging || !item.stage) return;
    const rect = view.getBoundingClientRect();
    setSplit(item, (event.clientX - rect.left - item.stage.left) / item.stage.width);
  });
  for (const type of ["pointerup", "pointercancel"]) {
    divider.addEventListener(type, () => { dragging = false; });
  }
  handle.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 0.1 : 0.01;
    const moves = {
      ArrowLeft: -step, ArrowDown: -step, ArrowRight: step, ArrowUp: step,
      PageDown: -0.1, PageUp: 0.1, Home: -1, End: 1,
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    event.stopPropagation();
    setSplit(item, item.split + moves[event.key]);
  });
}

function setUpZoom(item) {
  const view = $(".view", item.el);
  const content = $(".content", item.el);
  const before = $(".before", item.el);
  view.addEventListener("wheel", (event) => item.panzoom?.zoomWithWheel(event));
  // The original follows every pan and zoom, so the divider compares the same pixels.
  content.addEventListener("panzoomchange", (event) => {
    before.style.transform = content.style.transform;
    before.style.transformOrigin = content.style.transformOrigin;
    view.style.setProperty("--zoom", String(event.detail.scale));
    const actual = Math.round(100 * event.detail.scale * (item.fitScale || 1));
    $(".zoom-level", item.el).textContent = `${actual}%`;
    $(".zoom-out", item.el).disabled = event.detail.scale <= 1;
    refreshDetail(item);
  });
  const zoomBy = (factor) => {
    if (!item.panzoom) return;
    const rect = content.getBoundingClientRect();
    const scale = item.panzoom.getScale() * factor;
    item.panzoom.zoomToPoint(scale, {
      clientX: rect.left + rect.width / 2, clientY: rect.top + rect.height / 2,
    });
  };
  $(".zoom-in", item.el).addEventListener("click", () => zoomBy(2));
  $(".zoom-out", item.el).addEventListener("click", () => zoomBy(0.5));
  $(".zoom-fit", item.el).addEventListener("click", () => item.panzoom?.reset());
  $(".fullscreen", item.el).addEventListener("click", () => toggleFullscreen(item));
  // Keys on the photo: + and - zoom, 0 fits, the arrows pan a zoomed photo.
  view.addEventListener("keydown", (event) => {
    if (event.target !== view || !item.panzoom) return;
    const pans = { ArrowLeft: [1, 0], ArrowRight: [-1, 0], ArrowUp: [0, 1], ArrowDown: [0, -1] };
    if (event.key === "+" || event.key === "=") zoomBy(2);
    else if (event.key === "-") zoomBy(0.5);
    else if (event.key === "0") item.panzoom.reset();
    else if (event.key in pans && item.panzoom.getScale() > 1) {
      const step = 60 / item.panzoom.getScale();
      item.panzoom.pan(pans[event.key][0] * step, pans[event.key][1] * step, { relative: true });
    } else return;
    event.preventDefault();
  });
}

function toggleFullscreen(item) {
  const host = editor();
  if (document.fullscreenElement) document.exitFullscreen();
  else if (host.requestFullscreen) host.requestFullscreen().catch(() => {});
  $(".fullscreen", item.el).blur();
}

// The point of the photo in the middle of the view, as fractions of its width and height.
export function viewCentre(item) {
  const view = $(".view", item.el).getBoundingClientRect();
  const photo = $(".after", item.el).getBoundingClientRect();
  const fx = (view.left + view.width / 2 - photo.left) / photo.width;
  const fy = (view.top + view.height / 2 - photo.top) / photo.height;
  return { fx: Math.min(0.999, Math.max(0, fx)), fy: Math.min(0.999, Math.max(0, fy)) };
}

// ---- The full-size result over the preview, once the zoom outgrows the preview.

function detailKey(item) {
  return JSON.stringify([item.resultVersion, item.vividness, item.pins, item.maskVersion]);
}

function refreshDetail(item) {
  const detail = $(".detail", item.el);
  if (!item.pixels || !item.panzoom || !item.stage) return;
  const onScreen = item.panzoom.getScale() * item.stage.width * devicePixelRatio;
  const wanted = onScreen > item.pixels.width * DETAIL_AFTER;
  const key = detailKey(item);
  detail.hidden = !wanted || detail.dataset.key !== key;
  if (!wanted || detail.dataset.key === key || item.detailPending === key) return;
  clearTimeout(item.detailTimer);
  item.detailTimer = setTimeout(async () => {
    if (detailKey(item) !== key) return;
    item.detailPending = key;
    try {
      const result = await resultAt(item);
      if (detailKey(item) !== key) return; // the photo changed meanwhile
      if (detail.src.startsWith("blob:")) URL.revokeObjectURL(detail.src);
      detail.src = URL.createObjectURL(result.blob);
      await detail.decode();
      detail.dataset.key = key;
    } catch (error) {
      return; // the preview stays; the next zoom tries again
    } finally {
      item.detailPending = null;
    }
    refreshDetail(item);
  }, DETAIL_DELAY_MS);
}

window.addEventListener("resize", () => shared.refit());
document.addEventListener("fullscreenchange", () => {
  for (const button of document.querySelectorAll(".fullscreen")) {
    button.setAttribute("aria-pressed", String(document.fullscreenElement === editor()));
  }
  shared.refit();
});
