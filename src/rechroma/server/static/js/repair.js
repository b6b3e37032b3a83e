// Repair: scratches, dust and cracks filled on the server before the colour goes on; the
// repair mask shown in red and corrected with a brush.
import { $, request, save, setStatus } from "./common.js";
import { previewPixels, previewUpload, setPixels, showResult } from "./editor.js";
import { hintsJson } from "./pins.js";


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
export function withThreshold(item, options) {
  const { threshold } = REPAIR_STRENGTHS[Number($(".repair-strength", item.el).value)];
  if (threshold !== null) options.defects_threshold = threshold;
  return options;
}

export function setUpRepair(item) {
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
    item.maskVersion++;
    drawMask(item, true);
    describeRepair(item);
    previewRepair(item);
  });
  $(".mask-save", item.el).addEventListener("click", () => saveMask(item));
  setUpBrush(item);
}

// The mask as a PNG at the photo's full size, white where it is repaired: a corrected mask
// to keep (the API's and the library's `mask` take it), or real damage marked by hand.
async function saveMask(item) {
  const canvas = document.createElement("canvas");
  canvas.width = item.fullWidth;
  canvas.height = item.fullHeight;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = false; // whole pixels: a mask, not a picture
  context.drawImage(item.maskCanvas, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
  save(blob, `${item.name.replace(/\.[^.]*$/, "")}-mask.png`);
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
  $(".view", item.el).classList.toggle("painting", on);
  $(".mask-help", item.el).hidden = !on;
  item.panzoom?.setOptions({ disablePan: on }); // a drag paints, it does not pan
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
    item.maskVersion++;
    describeRepair(item);
    previewRepair(item);
  };
  overlay.addEventListener("pointerup", finish);
  overlay.addEventListener("pointercancel", finish);
}

export function maskBlob(item) {
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


// After a brush stroke: the photo repaired along the corrected mask, tried on a copy of the
// upload at preview size (never the full scan), so the person sees what the download holds.
async function previewRepair(item) {
  const run = ++item.repairRun;
  setStatus(item, "Repairing along your corrections…");
  try {
    const copy = await previewUpload(item);
    const options = { format: "jpeg", restore: true, mask: await maskBlob(item) };
    if (item.pins.length) options.hints = hintsJson(item, copy.width, copy.height);
    const result = await request(copy.file, options);
    const pixels = await previewPixels(item, result.blob);
    if (run !== item.repairRun) return; // a newer stroke is on its way
    setPixels(item, pixels);
    item.el.dataset.repairRuns = String(run);
    setStatus(item, "Repairs corrected: the download uses them");
  } catch (error) {
    if (run === item.repairRun) setStatus(item, `Repair preview failed: ${error.message}`);
  }
}
