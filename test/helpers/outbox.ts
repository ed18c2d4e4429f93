import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

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
