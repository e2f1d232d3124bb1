// The signed-in key lives only in sessionStorage: it is gone when the tab closes and never leaves this
// browser except as a signature.

const KEY = "iai-console.credentials";
export const DEFAULT_REGION = "ap-guangzhou";

export function getCredentials() {
  try {
    const raw = sessionStorage.getItem(KEY);
    if (!raw) return null;
    const c = JSON.parse(raw);
    return c && c.secretId && c.secretKey ? c : null;
  } catch {
    return null;
  }
}

export function setCredentials({ secretId, secretKey, region, token }) {
  sessionStorage.setItem(KEY, JSON.stringify({
    secretId, secretKey, region: region || DEFAULT_REGION, token: token || "",
  }));
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
}
