/**
 * Reading a JWT without any key: the seeds' "crack open a JWT". Base64url is an encoding, not
 * encryption — whoever holds a token can read its header and claims. Nothing here verifies the
 * signature; only the server (or gatepass/verify) can tell whether a token is genuine.
 */

export interface DecodedToken {
  /** The three base64url segments as they appear in the token. */
  segments: { header: string; payload: string; signature: string };
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/** Decodes one base64url segment to text (UTF-8), with atob: available in browsers and Node 20. */
export function base64UrlDecode(segment: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(segment)) throw new TypeError('not base64url');
  const base64 = segment.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (segment.length % 4)) % 4);
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (char) => char.charCodeAt(0));
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

function decodeJson(segment: string, part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(base64UrlDecode(segment));
  } catch {
    throw new TypeError(`the token's ${part} is not base64url-encoded JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TypeError(`the token's ${part} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** Splits a compact JWS on its dots and decodes header and payload. Throws a TypeError on anything else. */
export function decodeToken(token: string): DecodedToken {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TypeError('a JWT has three dot-separated parts');
  const [header = '', payload = '', signature = ''] = parts;
  return { segments: { header, payload, signature }, header: decodeJson(header, 'header'), payload: decodeJson(payload, 'payload') };
}
