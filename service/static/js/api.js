// The service's HTTP API, as the page uses it. Paths are relative to the page, so a proxy prefix works.
// Errors come back as ApiError with the service's own words ({"error": {"code", "message", "field"}}).

export class ApiError extends Error {
  constructor(message, { code = null, field = null, status = 0 } = {}) {
    super(message);
    this.code = code;
    this.field = field;
    this.status = status;
  }
}

export class Api {
  constructor() {
    this.key = ''; // X-API-Key, held in memory only
  }

  async request(path, init = {}) {
    const headers = { ...(init.headers || {}) };
    if (this.key) headers['X-API-Key'] = this.key;
    let response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new ApiError('The service did not answer: is it still running?');
    }
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = null; }
    if (!response.ok) {
      const error = body && body.error;
      const message = error ? error.message : `The service answered ${response.status} ${response.statusText}`;
      throw new ApiError(message, { code: error && error.code, field: error && error.field, status: response.status });
    }
    return body;
  }

  postJson(path, payload, signal) {
    return this.request(path, { method: 'POST', signal, headers: { 'Content-Type': 'application/json' },
                                body: JSON.stringify(payload) });
  }

  postForm(path, fields, signal) {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) {
      if (value !== undefined && value !== null) form.append(name, value);
    }
    return this.request(path, { method: 'POST', signal, body: form });
  }

  info() { return this.request('info'); }

  // options: {k, filters, group_by_clip}; the poses come back turned to face like the query (camera frame)
  retrieve(query, options, signal) {
    return this.postJson('retrieve', { query, ...options, align_to_query: true }, signal);
  }

  // every person of the photo, each with their own results
  retrieveImage(file, options, signal) {
    return this.postForm('retrieve', {
      image: file, k: String(options.k), group_by_clip: String(Boolean(options.group_by_clip)),
      filters: options.filters ? JSON.stringify(options.filters) : null, all_people: 'true', align_to_query: 'true',
    }, signal);
  }

  // motion search: the video's largest person against library clips; answers segments {clip, start, end, ...}
  retrieveVideo(file, options, signal) {
    return this.postForm('retrieve', {
      video: file, k: String(options.k), group_by_clip: String(Boolean(options.group_by_clip)),
      filters: options.filters ? JSON.stringify(options.filters) : null,
    }, signal);
  }

  lift(input, signal) { return this.postJson('lift3d', input, signal); }

  liftImage(file, signal) { return this.postForm('lift3d', { image: file, all_people: 'true' }, signal); }

  // a library clip's poses between start and end seconds (world Y-up, mm)
  clipMotion(clip, start, end, signal) {
    const path = clip.split('/').map(encodeURIComponent).join('/');
    const query = new URLSearchParams({ start: start.toFixed(3), end: end.toFixed(3), format: 'json' });
    return this.request(`clips/${path}/motion?${query}`, { signal });
  }
}

// One line a person can act on.
export function describeError(err) {
  if (err instanceof ApiError) {
    const where = err.field ? ` (${err.field})` : '';
    if (err.status === 401 || err.status === 403) return `${err.message}${where}. Enter a valid API key below.`;
    return `${err.message}${where}`;
  }
  return `Something went wrong in the page: ${err.message}`;
}
