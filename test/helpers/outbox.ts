import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { waitForValue } from './instances.js';

export interface OutboxMessage {
  file: string;
  to: string | undefined;
  tokens: string[];
}

/** The mails OutboxMailer wrote to `directory`, oldest first, with their `token=` lines. */
export function outboxMessages(directory: string): OutboxMessage[] {
  let files: string[];
  try {
    files = readdirSync(directory);
  } catch {
    return [];
  }
  return files.sort().map((file) => {
    const text = readFileSync(path.join(directory, file), 'utf8');
    return {
      file,
      to: /^To: (.*)$/m.exec(text)?.[1]?.trim(),
      tokens: [...text.matchAll(/^token=(\S+)$/gm)].map((match) => match[1] ?? ''),
    };
  });
}

/** The tokens of every mail to `email`. */
export function tokensMailedTo(directory: string, email: string): string[] {
  return outboxMessages(directory)
    .filter((message) => message.to === email)
    .flatMap((message) => message.tokens);
}

/** How long a test waits for a mail written in the background (after /auth/password/forgot). */
export const MAIL_WAIT_MS = 5000;

/** Waits for the one reset mail to `email` whose token is not among the `seen` tokens; adds it to `seen` and returns it. */
export async function nextResetToken(directory: string, email: string, seen: Set<string>): Promise<string> {
  const token = await waitForValue(
    `a reset mail to ${email} in ${directory}`,
    () => {
      const fresh = tokensMailedTo(directory, email).filter((candidate) => !seen.has(candidate));
      return fresh.length === 0 ? undefined : fresh;
    },
    MAIL_WAIT_MS,
  );
  assert.equal(token.length, 1, `expected one new reset mail to ${email}, found ${token.length}`);
  const value = token[0] ?? '';
  assert.match(value, /^[A-Za-z0-9_-]{32,}$/, 'a reset token should be long and URL-safe');
  seen.add(value);
  return value;
}
