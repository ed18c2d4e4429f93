import type { ValidationIssue } from './types.js';

/**
 * A refusal from the server: its HTTP `status`, the stable machine `code` and the human `detail`
 * exactly as sent (`{"detail", "code"}`; for a 422, `detail` is FastAPI's list of issues).
 */
export class GatepassApiError extends Error {
  override readonly name = 'GatepassApiError';

  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string | ValidationIssue[],
    /** Seconds from a `Retry-After` header (rate limits, lockouts), when the server sent one. */
    readonly retryAfterSeconds?: number,
  ) {
    super(describeDetail(detail));
  }

  /** The 422 issues, or an empty list for other errors. */
  get issues(): ValidationIssue[] {
    return Array.isArray(this.detail) ? this.detail : [];
  }
}

/** The server could not be reached, or answered something that is not gatepass JSON. */
export class GatepassNetworkError extends Error {
  override readonly name = 'GatepassNetworkError';
}

/** One line per issue, naming the field: `password: String should have at least 8 characters`. */
export function describeDetail(detail: string | ValidationIssue[]): string {
  if (typeof detail === 'string') return detail;
  return detail
    .map((issue) => {
      const field = issue.loc.filter((part) => part !== 'body').join('.');
      return field === '' ? issue.msg : `${field}: ${issue.msg}`;
    })
    .join('; ');
}

function isValidationIssue(value: unknown): value is ValidationIssue {
  if (typeof value !== 'object' || value === null) return false;
  const issue = value as Record<string, unknown>;
  return Array.isArray(issue.loc) && typeof issue.msg === 'string' && typeof issue.type === 'string';
}

/** Builds the typed error of a non-2xx answer; a body that is not `{detail, code}` still gives a usable error. */
export async function errorFromResponse(response: Response): Promise<GatepassApiError> {
  const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN);
  const retryAfterSeconds = Number.isFinite(retryAfter) ? retryAfter : undefined;
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof fields.code === 'string' ? fields.code : `http_${response.status}`;
  const rawDetail = fields.detail;
  const detail =
    typeof rawDetail === 'string'
      ? rawDetail
      : Array.isArray(rawDetail) && rawDetail.every(isValidationIssue)
        ? rawDetail
        : response.statusText || `HTTP ${response.status}`;
  return new GatepassApiError(response.status, code, detail, retryAfterSeconds);
}
