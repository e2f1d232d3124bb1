// TC3-HMAC-SHA256, exactly as Tencent Cloud's SDKs sign a JSON POST (SPEC.md §3).
//
// WebCrypto (crypto.subtle) does the hashing where the browser offers it. Browsers offer it only in a
// "secure context" (https, or http on localhost / 127.0.0.1); a console opened over plain http on a LAN
// address has no crypto.subtle, so a small SHA-256 / HMAC written here takes over. Both give the same bytes
// (tests/py/test_console.py checks both against the Python SDK's signer).

const encoder = new TextEncoder();

function bytes(data) {
  return typeof data === "string" ? encoder.encode(data) : new Uint8Array(data);
}

export function toHex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- Pure-JS SHA-256 (FIPS 180-4), used only without crypto.subtle ----

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export function sha256Js(data) {
  const msg = bytes(data);
  const bitLen = msg.length * 8;
  const padded = new Uint8Array(((msg.length + 9 + 63) >> 6) << 6);
  padded.set(msg);
  padded[msg.length] = 0x80;
  const view = new DataView(padded.buffer);
  view.setUint32(padded.length - 8, Math.floor(bitLen / 0x100000000));
  view.setUint32(padded.length - 4, bitLen >>> 0);
  const h = new Uint32Array([
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
  ]);
  const w = new Uint32Array(64);
  const rotr = (x, n) => (x >>> n) | (x << (32 - n));
  for (let off = 0; off < padded.length; off += 64) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(off + i * 4);
    for (let i = 16; i < 64; i++) {
      const s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      const s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + w[i]) >>> 0;
      const S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g; g = f; f = e; e = (d + t1) >>> 0;
      d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
  }
  const out = new Uint8Array(32);
  const outView = new DataView(out.buffer);
  h.forEach((v, i) => outView.setUint32(i * 4, v));
  return out;
}

export function hmacSha256Js(key, message) {
  let k = bytes(key);
  if (k.length > 64) k = sha256Js(k);
  const block = new Uint8Array(64);
  block.set(k);
  const inner = new Uint8Array(64);
  const outer = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    inner[i] = block[i] ^ 0x36;
    outer[i] = block[i] ^ 0x5c;
  }
  const msg = bytes(message);
  const innerInput = new Uint8Array(64 + msg.length);
  innerInput.set(inner);
  innerInput.set(msg, 64);
  const innerHash = sha256Js(innerInput);
  const outerInput = new Uint8Array(96);
  outerInput.set(outer);
  outerInput.set(innerHash, 64);
  return sha256Js(outerInput);
}

// ---- The two primitives, WebCrypto first ----

const JS_PRIMITIVES = {
  name: "js",
  sha256: async (data) => sha256Js(data),
  hmac: async (key, message) => hmacSha256Js(key, message),
};

const SUBTLE_PRIMITIVES = {
  name: "webcrypto",
  sha256: async (data) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes(data))),
  hmac: async (key, message) => {
    const k = await crypto.subtle.importKey("raw", bytes(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return new Uint8Array(await crypto.subtle.sign("HMAC", k, bytes(message)));
  },
};

export function primitives(prefer) {
  if (prefer === "js") return JS_PRIMITIVES;
  const hasSubtle = typeof crypto !== "undefined" && crypto.subtle && typeof crypto.subtle.digest === "function";
  return hasSubtle ? SUBTLE_PRIMITIVES : JS_PRIMITIVES;
}

/** The UTC calendar date (YYYY-MM-DD) of a unix timestamp in seconds. */
export function utcDate(timestamp) {
  return new Date(timestamp * 1000).toISOString().slice(0, 10);
}

/**
 * Sign one JSON POST to "/". Returns the Authorization header and the intermediate strings (for tests).
 * `host` is what the browser will send as Host: location.host. With `action`, the X-TC-Action header is
 * signed too (the SDKs leave it out): a captured request then cannot be resent as another action, and two
 * actions sent the same body within one second never share a signature (the server's replay protection).
 */
export async function signTc3({
  secretId, secretKey, host, body, timestamp, service = "iai", contentType = "application/json", prefer,
  action,
}) {
  const p = primitives(prefer);
  const date = utcDate(timestamp);
  const signedHeaders = action ? "content-type;host;x-tc-action" : "content-type;host";
  const actionHeader = action ? `x-tc-action:${action}\n` : "";
  const canonicalRequest = [
    "POST", "/", "",
    `content-type:${contentType}\nhost:${host}\n${actionHeader}`,
    signedHeaders,
    toHex(await p.sha256(body)),
  ].join("\n");
  const scope = `${date}/${service}/tc3_request`;
  const stringToSign = ["TC3-HMAC-SHA256", String(timestamp), scope, toHex(await p.sha256(canonicalRequest))].join("\n");
  const kDate = await p.hmac("TC3" + secretKey, date);
  const kService = await p.hmac(kDate, service);
  const kSigning = await p.hmac(kService, "tc3_request");
  const signature = toHex(await p.hmac(kSigning, stringToSign));
  return {
    authorization: `TC3-HMAC-SHA256 Credential=${secretId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    signature, canonicalRequest, stringToSign, date, primitives: p.name,
  };
}
