import { isIP } from 'node:net';

/** The WebAuthn relying party: who passkeys are made for and which pages may use them. */
export interface WebAuthnSettings {
  /** WEBAUTHN_RP_ID: the domain passkeys are bound to (a registrable suffix of every origin's host). */
  rpId: string;
  /** WEBAUTHN_RP_NAME: the name authenticators show beside the account. */
  rpName: string;
  /** WEBAUTHN_ORIGINS: the exact origins of the pages that may register and use passkeys. */
  origins: string[];
}

/** What readWebAuthnSettings needs from the settings reader. */
export interface WebAuthnSources {
  read: (name: string) => string | undefined;
  problems: string[];
  warnings: string[];
  environment: 'development' | 'production' | 'test';
  /** PUBLIC_URL as finally read (its default filled in): the development default's source. */
  publicUrl: string;
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function isLocalhost(hostname: string): boolean {
  return hostname === 'localhost' || hostname.endsWith('.localhost');
}

/**
 * WEBAUTHN_RP_ID, WEBAUTHN_RP_NAME and WEBAUTHN_ORIGINS. In production they are the operator's to
 * set: without WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS passkeys are off (undefined; a warning says so),
 * one without the other is a problem, and every origin must be https (except localhost). Elsewhere
 * they default to PUBLIC_URL's origin and hostname; browsers refuse an IP address as RP ID, so a
 * loopback or other IP host becomes `localhost` (open the page at http://localhost:PORT).
 * In every environment the RP ID must be a domain that every origin's host equals or ends with.
 */
export function readWebAuthnSettings({ read, problems, warnings, environment, publicUrl }: WebAuthnSources): WebAuthnSettings | undefined {
  const rpName = read('WEBAUTHN_RP_NAME') ?? 'gatepass';
  let rpId = read('WEBAUTHN_RP_ID')?.toLowerCase();
  let origins = (read('WEBAUTHN_ORIGINS') ?? '')
    .split(',')
    .map((origin) => origin.trim())
    .filter((origin) => origin !== '');
  if (environment === 'production') {
    if (rpId === undefined && origins.length === 0) {
      warnings.push(
        'Passkeys are off: set WEBAUTHN_RP_ID (e.g. example.com) and WEBAUTHN_ORIGINS (e.g. https://auth.example.com) to turn them on.',
      );
      return undefined;
    }
    if (rpId === undefined)
      problems.push(
        'WEBAUTHN_RP_ID is required in production when WEBAUTHN_ORIGINS is set (the domain passkeys are bound to, e.g. example.com)',
      );
    if (origins.length === 0)
      problems.push(
        'WEBAUTHN_ORIGINS is required in production when WEBAUTHN_RP_ID is set (comma-separated page origins, e.g. https://auth.example.com)',
      );
  } else if (rpId === undefined || origins.length === 0) {
    const derived = developmentDefault(publicUrl);
    rpId ??= derived?.rpId;
    if (origins.length === 0 && derived !== undefined) origins = [derived.origin];
  }
  if (rpId === undefined || origins.length === 0) return undefined;

  let rpIdValid = true;
  if (!HOSTNAME.test(rpId) || isIP(rpId) !== 0) {
    problems.push(`WEBAUTHN_RP_ID must be a domain name without scheme, port or path, such as example.com (got "${rpId}")`);
    rpIdValid = false;
  }
  const checked: string[] = [];
  for (const origin of origins) {
    const url = URL.canParse(origin) ? new URL(origin) : undefined;
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== origin.replace(/\/$/, '')) {
      problems.push(`WEBAUTHN_ORIGINS entries must be origins like https://auth.example.com, without a path (got "${origin}")`);
      continue;
    }
    if (environment === 'production' && url.protocol === 'http:' && !isLocalhost(url.hostname))
      problems.push(`WEBAUTHN_ORIGINS must use https in production, except for localhost (got "${origin}")`);
    if (rpIdValid && url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`))
      problems.push(
        `WEBAUTHN_RP_ID "${rpId}" must equal the host of every WEBAUTHN_ORIGINS entry or be a parent domain of it (got origin "${origin}")`,
      );
    checked.push(url.origin);
  }
  return { rpId, rpName, origins: checked };
}

/** PUBLIC_URL's origin and hostname; an IP address host (never a valid RP ID) becomes localhost on the same port. */
function developmentDefault(publicUrl: string): { rpId: string; origin: string } | undefined {
  // A PUBLIC_URL that is no http(s) URL is reported as such; nothing is derived from it.
  if (!URL.canParse(publicUrl)) return undefined;
  const url = new URL(publicUrl);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return undefined;
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(hostname) !== 0) url.hostname = 'localhost';
  return { rpId: url.hostname, origin: url.origin };
}
