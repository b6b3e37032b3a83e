// What every part of the page shares: the server's abilities, DOM lookup, status lines,
// requests to the server and saving a file.

// Filled from /api/health: what this server can do and the limits files are held to
// (files over them are never sent).
export const server = { takesHints: false, restores: false, limits: null };

// What the page as a whole holds: the vividness last applied to every photo (new photos and
// clips start at it), and the page's answers, set by main.js: what happens when an item is
// done (it may open), when a photo's vividness is applied to all, when the editor's size
// changes, and when a photo's colours become the reference for the others.
export const shared = {
  vividness: 1, onFinished: () => {}, applyVividness: () => {}, refit: () => {},
  useAsReference: () => {},
};

export const $ = (selector, root = document) => root.querySelector(selector);

// An item's status, on its thumbnail card and in its editor panel alike.
export function setStatus(item, text) {
  for (const root of [item.card, item.el]) {
    const status = root && $(".status", root);
    if (status) status.textContent = text;
  }
}

// An item is done: its card says so and the page may open it in the editor.
export function finished(item) {
  const bar = $("progress", item.card);
  bar.value = 100;
  bar.hidden = true;
  setStatus(item, "Done");
  item.card.classList.add("done");
  // From the file's arrival in the page to its colour version on screen (the benchmark's).
  item.card.dataset.doneMs = String(Math.round(performance.now() - item.added));
  shared.onFinished(item);
}

// A card that failed shows why, and what can still be done: try again (when another try
// could go otherwise) or remove it.
export function fail(item, message, retry = true) {
  $("progress", item.card).hidden = true;
  setStatus(item, "Failed");
  const error = $(".error", item.card);
  error.textContent = message;
  error.hidden = false;
  $(".failed-actions", item.card).hidden = false;
  $(".retry", item.card).hidden = !retry;
}

// POST one file; resolves to {blob, name} or rejects with a readable message.
export function request(file, options = {}, onProgress = null, route = "/api/colorize") {
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

export function save(blob, name) {
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// Why a file is over the server's size limit (a sentence), or null when it is not.
export function oversize(file, maxMegabytes, kind) {
  if (!maxMegabytes || file.size <= maxMegabytes * 2 ** 20) return null;
  const size = (file.size / 2 ** 20).toFixed(1);
  return `This file is ${size} MB; this server takes ${kind} up to ${Math.round(maxMegabytes)} MB.`;
}
