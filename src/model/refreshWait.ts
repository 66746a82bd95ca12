// How long a refresh caller (POST …/refresh, the proxy on an expired token or a 401, durable
// messages) waits for the workflow's answer before a 503 with Retry-After (MAESTRO_REFRESH_WAIT_MS).
export const DEFAULT_REFRESH_WAIT_MS = 20_000;
export const MIN_REFRESH_WAIT_MS = 1_000;
export const MAX_REFRESH_WAIT_MS = 300_000;
