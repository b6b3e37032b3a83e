// Film clips: queued on the server as a job, polled, then played beside the original.
import { $, fail, finished, save, setStatus, shared } from "./common.js";

const VIDEO_EXTENSIONS = /\.(mp4|m4v|mov|mkv|avi|webm)$/i;
const POLL_MS = 500;

export function isVideo(file) {
  return (file.type || "").startsWith("video/") || VIDEO_EXTENSIONS.test(file.name || "");
}

// A clip's editor panel: the original and the colour version played side by side.
export function videoPanel(item) {
  item.el = $("#video-template").content.firstElementChild.cloneNode(true);
  $(".name", item.el).textContent = item.name;
  const download = $(".download", item.el);
  download.addEventListener("click", () => save(item.blob, item.blobName));
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
    form.append("vividness", String(shared.vividness));
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/videos");
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (!event.lengthComputable) return;
      $("progress", item.card).value = Math.round(20 * event.loaded / event.total);
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

export async function colorizeVideo(item) {
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
        $("progress", item.card).value = 20 + Math.round(80 * (status.progress || 0));
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
    fail(item, `Could not colorize ${item.name}: ${error.message}`, false);
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
  $(".download", item.el).hidden = false;
  finished(item);
}
