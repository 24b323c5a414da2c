// Talks to the server's /api/v1 routes and turns every failure into one ApiError carrying
// the server's `{error: {code, message}}`, so any screen can show the message as is.
// The token lives only in the HttpOnly cookie the server sets at sign-in; the client never
// sees or stores it.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

let unauthorizedHandler = null;

/** Called when any call finds the session gone (401 `unauthorized`). */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

export async function request(method, path, { json, body, contentType, signal, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (contentType) {
    headers['Content-Type'] = contentType;
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body, signal, credentials: 'same-origin', cache: 'no-store' });
  } catch (e) {
    if (e && e.name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection and try again.');
  }
  const text = await res.text().catch(() => '');
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error;
    const e = new ApiError(
      res.status,
      (err && err.code) || `http_${res.status}`,
      (err && err.message) || `The server answered ${res.status} ${res.statusText}.`.trim(),
      res.headers.get('Retry-After'),
    );
    if (res.status === 401 && e.code === 'unauthorized' && !quiet401 && unauthorizedHandler) unauthorizedHandler(e);
    throw e;
  }
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, json, opts) => request('POST', path, { ...opts, json: json === undefined ? undefined : json }),
  put: (path, json, opts) => request('PUT', path, { ...opts, json }),
  patch: (path, json, opts) => request('PATCH', path, { ...opts, json }),
  del: (path, opts) => request('DELETE', path, opts),
  /** Uploads raw bytes (a picture) as the body. */
  upload: (path, blob, opts) => request('PUT', path, { ...opts, body: blob, contentType: blob.type || 'application/octet-stream' }),
};

/** Encodes one path segment (conversation ids are opaque, so always escape them). */
export const seg = (s) => encodeURIComponent(String(s));
