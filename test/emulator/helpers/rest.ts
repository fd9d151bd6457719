/** A minimal REST caller for the emulator: form bodies, Basic auth, JSON answers. */
export interface RestResult {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

export interface RestCaller {
  get(path: string): Promise<RestResult>;
  post(path: string, params?: Record<string, string>): Promise<RestResult>;
}

export function restCaller(baseUrl: string, user: string, password: string): RestCaller {
  const auth = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
  const call = async (method: string, path: string, params?: Record<string, string>): Promise<RestResult> => {
    const res = await fetch(baseUrl + path, {
      method,
      headers: { Authorization: auth, ...(params ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {}) },
      ...(params ? { body: new URLSearchParams(params).toString() } : {}),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
  };
  return { get: (p) => call('GET', p), post: (p, params = {}) => call('POST', p, params) };
}
