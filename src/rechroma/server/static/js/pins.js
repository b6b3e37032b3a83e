// Colour pins: hints the person gives, tried on a small copy of the photo, applied at
// full size on download.
import { $, request, save, setStatus, shared } from "./common.js";
import { editCopy, previewPixels, setPixels, viewCentre } from "./editor.js";

const HINT_DELAY_MS = 50; // let a drag or a burst of key presses settle first


// The hints as the CLI and the API read them, in pixels of a width x height image. Pins
// from a reference photo keep their size and colour group (a group spreads as one).
export function hintsJson(item, width, height) {
  const hints = item.pins.map((pin) => {
    const hint = {
      x: Math.min(width - 1, Math.round(pin.fx * width * 10) / 10),
      y: Math.min(height - 1, Math.round(pin.fy * height * 10) / 10),
      color: pin.color,
    };
    if (pin.fr != null) hint.radius = Math.round(pin.fr * width * 10) / 10;
    if (pin.group != null) hint.group = pin.group;
    return hint;
  });
  return JSON.stringify({ hints }, null, 2);
}

// Pins from a reference photo: the server matches it to the small copy of this photo
// (/api/match) and answers hints, which replace the pins an earlier reference gave; the
// person's own pins stay.
export async function pinsFromReference(item, reference) {
  setStatus(item, "Matching the reference photo…");
  try {
    const copy = await editCopy(item);
    const answer = await request(copy.file, { reference }, null, "/api/match");
    const { hints } = JSON.parse(await answer.blob.text());
    const matched = hints.map((hint) => ({
      fx: hint.x / copy.width, fy: hint.y / copy.height, color: hint.color,
      fr: hint.radius / copy.width, group: hint.group,
    }));
    if (!matched.length) {
      setStatus(item, "Nothing in the reference matched this photo: its colours are kept");
      return;
    }
    changePins(item, (pins) => pins.splice(
      0, pins.length, ...pins.filter((pin) => pin.group == null), ...matched));
    item.el.dataset.referencePins = String(matched.length);
    shared.refit(); // the tools grew a row: the photo fits its view again
  } catch (error) {
    setStatus(item, `Reference failed: ${error.message}`);
  }
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
  $(".clear-reference", item.el).hidden = !item.pins.some((pin) => pin.group != null);
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
      const copy = await editCopy(item);
      const result = await request(copy.file, {
        format: "jpeg", hints: hintsJson(item, copy.width, copy.height),
      });
      pixels = await previewPixels(item, result.blob);
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
    marker.className = "pin panzoom-exclude";
    if (pin.group != null) marker.classList.add("from-reference");
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
    // A recoloured pin is the person's own: it leaves its reference group.
    picker.addEventListener("change", () => changePins(item, (pins) => {
      pins[index] = { ...pins[index], color: picker.value, group: null };
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

export function setUpHints(item) {
  const view = $(".view", item.el);
  const mode = $(".pin-mode", item.el);
  mode.addEventListener("click", () => {
    const on = mode.getAttribute("aria-pressed") !== "true";
    mode.setAttribute("aria-pressed", String(on));
    view.classList.toggle("placing", on);
    $(".pin-help", item.el).hidden = !on;
  });
  // By keyboard: on the photo (it takes the focus), Enter adds a pin in the middle of what
  // is in view and focuses it, to be moved with the arrow keys.
  view.addEventListener("keydown", (event) => {
    if (!view.classList.contains("placing") || event.key !== "Enter") return;
    if (event.target !== view) return;
    event.preventDefault();
    const { fx, fy } = viewCentre(item);
    item.history.push(JSON.stringify(item.pins));
    item.pins.push({ fx, fy, color: modelColour(item, fx, fy) });
    pinsChanged(item, item.pins.length - 1);
  });
  // A drag pans a zoomed photo; only a click that stayed put places a pin.
  let downAt = null;
  view.addEventListener("pointerdown", (event) => { downAt = [event.clientX, event.clientY]; });
  view.addEventListener("click", (event) => {
    if (!view.classList.contains("placing") || event.target.classList.contains("pin")) return;
    if (!event.target.closest(".content")) return;
    if (downAt && Math.hypot(event.clientX - downAt[0], event.clientY - downAt[1]) > 4) return;
    const box = $(".after", item.el).getBoundingClientRect();
    const fx = Math.min(0.999, Math.max(0, (event.clientX - box.left) / box.width));
    const fy = Math.min(0.999, Math.max(0, (event.clientY - box.top) / box.height));
    changePins(item, (pins) => pins.push({ fx, fy, color: modelColour(item, fx, fy) }));
  });
  $(".reference-file", item.el).addEventListener("change", (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (file) pinsFromReference(item, file);
  });
  // A colour photo dropped on this photo is its reference.
  view.addEventListener("dragover", (event) => {
    if ([...event.dataTransfer.items].some((entry) => entry.type.startsWith("image/"))) {
      event.preventDefault();
      event.stopPropagation();
    }
  });
  view.addEventListener("drop", (event) => {
    const file = [...event.dataTransfer.files].find((entry) => entry.type.startsWith("image/"));
    if (!file) return;
    event.preventDefault();
    event.stopPropagation();
    pinsFromReference(item, file);
  });
  $(".use-as-reference", item.el).addEventListener("click", () => shared.useAsReference(item));
  $(".clear-reference", item.el).addEventListener("click", () => changePins(item, (pins) => {
    pins.splice(0, pins.length, ...pins.filter((pin) => pin.group == null));
  }));
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

