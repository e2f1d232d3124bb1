// Every call the console makes: POST / on this origin, JSON body, TC3-signed in the browser.

import { signTc3 } from "./sign.js";
import { getCredentials } from "./session.js";
import { getLang } from "./i18n.js";

const DEFAULT_VERSION = "2018-03-01";
// Actions answered only under 2020-03-03 would be listed here; every action the console uses is 2018-03-01.
const VERSION_OF = {};

// Codes that mean the key itself was refused: the console signs out on these.
export const AUTH_CODES = new Set([
  "AuthFailure.SecretIdNotFound", "AuthFailure.SignatureFailure", "AuthFailure.InvalidAuthorization",
  "AuthFailure.TokenFailure", "AuthFailure.InvalidSecretId", "AuthFailure.SignatureExpire",
]);

export class ApiError extends Error {
  constructor(code, message, requestId = "", action = "") {
    super(message);
    this.code = code;
    this.requestId = requestId;
    this.action = action;
  }
}

// Seconds to add to this browser's clock (learned from the server's Date header after SignatureExpire).
let clockOffset = 0;

async function send(action, body, creds, version) {
  const timestamp = Math.floor(Date.now() / 1000) + clockOffset;
  const { authorization } = await signTc3({
    secretId: creds.secretId, secretKey: creds.secretKey, host: location.host, body, timestamp, action,
  });
  const headers = {
    "Content-Type": "application/json",
    "X-TC-Action": action,
    "X-TC-Version": version,
    "X-TC-Timestamp": String(timestamp),
    "X-TC-Region": creds.region,
    "X-TC-Language": getLang() === "zh" ? "zh-CN" : "en-US",
    Authorization: authorization,
  };
  if (creds.token) headers["X-TC-Token"] = creds.token;
  let res;
  try {
    res = await fetch("/", { method: "POST", headers, body, cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ApiError("NetworkError", String(e && e.message ? e.message : e), "", action);
  }
  let data;
  try {
    data = await res.json();
  } catch {
    throw new ApiError("InvalidResponse", `HTTP ${res.status}`, "", action);
  }
  return { res, response: data && data.Response };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Call one action and return its Response object (RequestId included). Throws ApiError with Tencent's
 * Code and Message when the answer is an error.
 */
export async function call(action, params = {}, { credentials, version } = {}) {
  const creds = credentials || getCredentials();
  if (!creds) throw new ApiError("NotSignedIn", "Not signed in", "", action);
  const body = JSON.stringify(params);
  const ver = version || VERSION_OF[action] || DEFAULT_VERSION;
  let skewRetried = false;
  for (let attempt = 0; ; attempt++) {
    const { res, response } = await send(action, body, creds, ver);
    if (!response) throw new ApiError("InvalidResponse", `HTTP ${res.status}`, "", action);
    const err = response.Error;
    if (!err) return response;
    // The browser's clock is off by more than the allowed skew: sign again on the server's clock, once.
    if (err.Code === "AuthFailure.SignatureExpire" && !skewRetried) {
      const serverTime = Date.parse(res.headers.get("Date") || "");
      if (!Number.isNaN(serverTime)) {
        clockOffset = Math.round((serverTime - Date.now()) / 1000);
        skewRetried = true;
        continue;
      }
    }
    // Over the QPS limit of its interface group: wait a moment and try again (a page of thumbnails can be
    // 50 calls).
    if (/RequestLimitExceeded$/.test(err.Code) && attempt < 4) {
      await sleep(250 * 2 ** attempt);
      continue;
    }
    throw new ApiError(err.Code, err.Message || "", response.RequestId || "", action);
  }
}

/** Fetch every page of a paged list action (Offset/Limit) up to `max` items. */
export async function callAll(action, params, listKey, totalKey, { pageSize = 1000, max = 10000 } = {}) {
  const items = [];
  for (let offset = 0; offset < max; offset += pageSize) {
    const r = await call(action, { ...params, Offset: offset, Limit: pageSize });
    const page = r[listKey] || [];
    items.push(...page);
    // An Offset past the end is an error (OffsetExceed), so stop at the total rather than at an empty page.
    if (page.length < pageSize || items.length >= (r[totalKey] ?? Infinity)) break;
  }
  return items;
}
