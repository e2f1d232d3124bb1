// Face thumbnails (GetFaceThumbnail): fetched once per FaceId per session, a few at a time.

import { call } from "./api.js";
import { h } from "./ui.js";
import { t } from "./i18n.js";

// A transparent pixel shown (over a grey background) until the thumbnail arrives.
const BLANK = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

const cache = new Map(); // FaceId -> Promise<data URL>
const queue = [];
let inFlight = 0;
const MAX_IN_FLIGHT = 4;

function pump() {
  while (inFlight < MAX_IN_FLIGHT && queue.length) {
    const job = queue.shift();
    inFlight++;
    call("GetFaceThumbnail", { FaceId: job.faceId })
      .then((r) => job.resolve(`data:image/png;base64,${r.Image}`), job.reject)
      .finally(() => { inFlight--; pump(); });
  }
}

export function thumbnailUrl(faceId) {
  if (!cache.has(faceId)) {
    const p = new Promise((resolve, reject) => { queue.push({ faceId, resolve, reject }); pump(); });
    p.catch(() => cache.delete(faceId)); // try again next time
    cache.set(faceId, p);
  }
  return cache.get(faceId);
}

export function clearThumbnails() {
  cache.clear();
}

/** An <img class="face-thumb"> that fills in when its thumbnail arrives (a placeholder until then). */
export function faceThumb(faceId, { size = "md", alt = "" } = {}) {
  const img = h("img", { class: `face-thumb thumb-${size} pending`, alt: alt || t("person.face"), "data-face-id": faceId,
    src: BLANK, width: size === "lg" ? 96 : size === "sm" ? 32 : 48, height: size === "lg" ? 96 : size === "sm" ? 32 : 48 });
  if (!faceId) {
    img.classList.replace("pending", "missing");
    return img;
  }
  thumbnailUrl(faceId).then(
    (url) => { img.src = url; img.classList.remove("pending"); },
    (err) => { img.classList.replace("pending", "missing"); img.title = `${err.code}: ${err.message}`; });
  return img;
}
