import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { waitForValue } from './instances.js';

export interface OutboxMessage {
  file: string;
  to: string | undefined;
  subject: string | undefined;
  text: string;
  tokens: string[];
}

/** Which mails a helper looks at: password reset, email verification, the email-change notice, or all of them. */
export type MailKind = 'reset' | 'verification' | 'email-changed' | 'all';

const SUBJECTS: Record<Exclude<MailKind, 'all'>, RegExp> = {
  reset: /^Reset your gatepass password$/,
  verification: /^Verify your gatepass email address$/,
  'email-changed': /^Your gatepass email address was changed$/,
};

/**
 * The mails OutboxMailer wrote to `directory`, oldest first, with their `token=` lines; by default
 * only the reset mails (every registration mails a verification token too).
 */
export function outboxMessages(directory: string, kind: MailKind = 'reset'): OutboxMessage[] {
  let files: string[];
  try {
    files = readdirSync(directory);
  } catch {
    return [];
  }
  const messages = files.sort().map((file) => {
    const text = readFileSync(path.join(directory, file), 'utf8');
    return {
      file,
      to: /^To: (.*)$/m.exec(text)?.[1]?.trim(),
      subject: /^Subject: (.*)$/m.exec(text)?.[1]?.trim(),
      text,
      tokens: [...text.matchAll(/^token=(\S+)$/gm)].map((match) => match[1] ?? ''),
    };
  });
  return kind === 'all' ? messages : messages.filter((message) => SUBJECTS[kind].test(message.subject ?? ''));
}

/** The tokens of every mail of a kind (reset mails by default) to `email`. */
export function tokensMailedTo(directory: string, email: string, kind: MailKind = 'reset'): string[] {
  return outboxMessages(directory, kind)
    .filter((message) => message.to === email)
    .flatMap((message) => message.tokens);
}

/** How long a test waits for a mail written in the background (after /auth/password/forgot). */
export const MAIL_WAIT_MS = 5000;

/** Waits for the one reset mail to `email` whose token is not among the `seen` tokens; adds it to `seen` and returns it. */
export function nextResetToken(directory: string, email: string, seen: Set<string>): Promise<string> {
  return nextMailedToken(directory, email, seen, 'reset');
}

/** Waits for the one verification mail to `email` whose token is not among the `seen` tokens; adds it to `seen` and returns it. */
export function nextVerificationToken(directory: string, email: string, seen: Set<string>): Promise<string> {
  return nextMailedToken(directory, email, seen, 'verification');
}

async function nextMailedToken(directory: string, email: string, seen: Set<string>, kind: 'reset' | 'verification'): Promise<string> {
  const token = await waitForValue(
    `a ${kind} mail to ${email} in ${directory}`,
    () => {
      const fresh = tokensMailedTo(directory, email, kind).filter((candidate) => !seen.has(candidate));
      return fresh.length === 0 ? undefined : fresh;
    },
    MAIL_WAIT_MS,
  );
  assert.equal(token.length, 1, `expected one new ${kind} mail to ${email}, found ${token.length}`);
  const value = token[0] ?? '';
  assert.match(value, /^[A-Za-z0-9_-]{32,}$/, `a ${kind} token should be long and URL-safe`);
  seen.add(value);
  return value;
}
