#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { ConfigError, loadSettings } from '../config/settings.js';
import { FieldError, GatepassError } from '../errors.js';
import { serve } from '../server.js';
import { KeyStoreError } from '../tokens/key-store.js';
import {
  UsageError,
  createServiceCredential,
  createUser,
  deactivateUser,
  resetMfa,
  decodeToken,
  generateKeys,
  generateSecret,
  listKeys,
  listServiceCredentials,
  parseRole,
  retireKey,
  revokeServiceCredential,
  rotateKeys,
  runMigrations,
  setRole,
  verifyToken,
} from './commands.js';

const HELP: Record<string, string> = {
  main: `gatepass — JWT authentication server and toolkit

Usage: gatepass <command> [options]

Commands:
  serve                          start the HTTP server (settings from the environment and .env)
  migrate                        bring the database schema up to date
  user create --email E [--role R] [--full-name N] [--password-stdin]
                                 create an account (the password is prompted, or read from stdin)
  user set-role --email E --role R
                                 change a role; running servers refuse the user's older access
                                 tokens within a second (at once with Redis)
  user deactivate --email E      deactivate an account and end all its sessions
  user reset-mfa --email E       remove an account's two-factor sign-in (TOTP and recovery codes)
  secret generate [--bytes N]    print a random secret for JWT_SECRET / JWT_REFRESH_SECRET
  keys generate|rotate|list|retire <kid>
                                 manage the key pairs of RS256/PS256/ES256/EdDSA in JWT_KEYS_DIR
  service create|revoke <name>, service list
                                 manage the credentials other services use for the revocation
                                 feed, introspection and revocation
  token decode <jwt>             show a token's header, payload and times (does NOT verify it)
  token verify <jwt>             check a token's signature and claims with the configured secrets

Every command takes --help. Settings come from the environment and .env, as for the server.`,
  serve: `Usage: gatepass serve

Starts the HTTP server on HOST:PORT (default 127.0.0.1:8000) with the database of DATABASE_URL
(default sqlite:./data/gatepass.db). Migrations run at start.`,
  migrate: `Usage: gatepass migrate

Applies the schema migrations that DATABASE_URL's database lacks, then exits.`,
  user: `Usage:
  gatepass user create --email E [--role student|teacher|admin] [--full-name N] [--password-stdin]
  gatepass user set-role --email E --role student|teacher|admin
  gatepass user deactivate --email E
  gatepass user reset-mfa --email E

create asks for the password on the terminal (hidden), or reads it from standard input with
--password-stdin (one line; the trailing newline is dropped). The password policy of registration
applies: 8-128 characters, not a common password.`,
  secret: `Usage: gatepass secret generate [--bytes N]

Prints N random bytes (default 32) as hex: the seeds' \`openssl rand -hex 32\`. Use one for
JWT_SECRET and another for JWT_REFRESH_SECRET.`,
  keys: `Usage:
  gatepass keys generate         create the first key pair in JWT_KEYS_DIR (development does this by itself)
  gatepass keys rotate           sign new tokens with a new key; the old one keeps verifying until its tokens expire
  gatepass keys list             every key with its status: active, verifying (until its tokens expire), expired
  gatepass keys retire <kid>     remove a key that no longer signs; tokens it signed stop verifying

Keys are PEM files (mode 600) in JWT_KEYS_DIR (default ./data/keys) for the JWT_ALGORITHM in use. Running
servers notice a rotation within a second; give every instance the same directory.`,
  service: `Usage:
  gatepass service create <name>   print a new credential's client_id and client_secret (shown once)
  gatepass service revoke <name>   end a credential; every running server refuses it from its next request
  gatepass service list            every credential: name, client_id, created, last used (never the secret)

A name is 1-64 characters: letters, digits, ".", "_" and "-". A service sends the credential with HTTP
Basic (client_id:client_secret). Only a hash of the secret is stored: a lost secret cannot be shown
again; revoke the credential and create another.`,
  token: `Usage:
  gatepass token decode <jwt>    show header, payload and times; anyone can do this, no key needed
  gatepass token verify <jwt>    check signature and claims with JWT_SECRET / JWT_REFRESH_SECRET

verify exits 0 for a valid token and 1 for an invalid one.`,
};

async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  if (!process.stdin.isTTY) throw new UsageError('no terminal to ask for the password on; pass --password-stdin and pipe it in');
  process.stderr.write('Password: ');
  process.stdin.setRawMode(true);
  process.stdin.resume();
  let password = '';
  try {
    for await (const chunk of process.stdin) {
      for (const char of (chunk as Buffer).toString('utf8')) {
        if (char === '\r' || char === '\n') return password;
        if (char === '\u0003') throw new UsageError('cancelled');
        password = char === '\u007f' ? password.slice(0, -1) : password + char;
      }
    }
    return password;
  } finally {
    process.stdin.setRawMode(false);
    process.stdin.pause();
    process.stderr.write('\n');
  }
}

const OPTIONS = {
  email: { type: 'string' },
  role: { type: 'string' },
  'full-name': { type: 'string' },
  'password-stdin': { type: 'boolean' },
  bytes: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Parses the command's arguments; an option the command does not take is a usage error. */
function options(args: string[], allowed: (keyof typeof OPTIONS)[]) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  for (const name of Object.keys(parsed.values)) {
    if (name !== 'help' && !(allowed as string[]).includes(name)) throw new UsageError(`unknown option --${name}`);
  }
  return parsed;
}

function required(value: string | boolean | undefined, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`${flag} is required`);
  return value;
}

/**
 * Runs one command; returns the exit code. Each command's arguments are parsed by its own function
 * below, so that this one only tells the commands apart.
 */
async function run(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    console.error(HELP.main);
    return 2;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP.main);
    return 0;
  }
  if (!(command in HELP) || command === 'main') throw new UsageError(`unknown command "${command}"`);
  const help = HELP[command] ?? '';

  switch (command) {
    case 'serve':
    case 'migrate':
      return runServeOrMigrate(command, rest, help);
    case 'user':
      return runUser(rest, help);
    case 'secret':
      return runSecret(rest, help);
    case 'keys':
      return runKeys(rest, help);
    case 'service':
      return runService(rest, help);
    case 'token':
      return runToken(rest, help);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/** `serve` and `migrate` take no arguments; both open the database of the settings. */
async function runServeOrMigrate(command: 'serve' | 'migrate', args: string[], help: string): Promise<number> {
  const parsed = options(args, []);
  if (parsed.values.help === true) return (console.log(help), 0);
  if (parsed.positionals.length > 0) throw new UsageError(`${command} takes no arguments`);
  if (command === 'serve') {
    await serve(loadSettings());
    return 0;
  }
  console.log(await runMigrations(loadSettings()));
  return 0;
}

/** `user create|set-role|deactivate|reset-mfa`. A missing --email is reported before the password is asked for, not after it was typed. */
async function runUser(args: string[], help: string): Promise<number> {
  const parsed = options(args, ['email', 'role', 'full-name', 'password-stdin']);
  const [action, ...extra] = parsed.positionals;
  if (parsed.values.help === true) return (console.log(help), 0);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const email = () => required(parsed.values.email, '--email');
  if (action === 'create') {
    const role = parseRole(parsed.values.role) ?? 'student';
    const address = email();
    const password = await readPassword(parsed.values['password-stdin'] === true);
    console.log(await createUser(loadSettings(), { email: address, password, role, fullName: parsed.values['full-name'] ?? null }));
    return 0;
  }
  if (action === 'set-role') {
    const role = parseRole(required(parsed.values.role, '--role'));
    console.log(await setRole(loadSettings(), email(), role ?? 'student'));
    return 0;
  }
  if (action === 'deactivate') {
    console.log(await deactivateUser(loadSettings(), email()));
    return 0;
  }
  if (action === 'reset-mfa') {
    console.log(await resetMfa(loadSettings(), email()));
    return 0;
  }
  throw new UsageError(
    action === undefined ? 'user needs an action: create, set-role, deactivate or reset-mfa' : `unknown user action "${action}"`,
  );
}

/** `secret generate [--bytes N]`: needs no settings, so that it works before any are written. */
async function runSecret(args: string[], help: string): Promise<number> {
  const parsed = options(args, ['bytes']);
  if (parsed.values.help === true) return (console.log(help), 0);
  if (parsed.positionals[0] !== 'generate' || parsed.positionals.length > 1)
    throw new UsageError('usage: gatepass secret generate [--bytes N]');
  const bytes = Number(parsed.values.bytes ?? 32);
  if (!Number.isInteger(bytes) || bytes < 32 || bytes > 1024) throw new UsageError('--bytes must be a whole number from 32 to 1024');
  console.log(generateSecret(bytes));
  return 0;
}

/** `keys generate|rotate|list|retire <kid>`: only retire takes a key id. */
async function runKeys(args: string[], help: string): Promise<number> {
  const parsed = options(args, []);
  if (parsed.values.help === true) return (console.log(help), 0);
  const [action, kid, ...extra] = parsed.positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const settings = loadSettings();
  if (action === 'retire') {
    if (kid === undefined) throw new UsageError('usage: gatepass keys retire <kid>');
    console.log(retireKey(settings, kid));
    return 0;
  }
  if (kid !== undefined) throw new UsageError(`unexpected argument "${kid}"`);
  if (action === 'generate') console.log(generateKeys(settings));
  else if (action === 'rotate') console.log(rotateKeys(settings));
  else if (action === 'list') console.log(listKeys(settings));
  else
    throw new UsageError(
      action === undefined ? 'keys needs an action: generate, rotate, list or retire' : `unknown keys action "${action}"`,
    );
  return 0;
}

/** `service create|revoke <name>`, `service list`. create's standard output is the credential alone, for scripts to read. */
async function runService(args: string[], help: string): Promise<number> {
  const parsed = options(args, []);
  if (parsed.values.help === true) return (console.log(help), 0);
  const [action, name, ...extra] = parsed.positionals;
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  if (action === 'list') {
    if (name !== undefined) throw new UsageError(`unexpected argument "${name}"`);
    console.log(await listServiceCredentials(loadSettings()));
    return 0;
  }
  if (action !== 'create' && action !== 'revoke')
    throw new UsageError(action === undefined ? 'service needs an action: create, revoke or list' : `unknown service action "${action}"`);
  if (name === undefined) throw new UsageError(`usage: gatepass service ${action} <name>`);
  if (action === 'revoke') {
    console.log(await revokeServiceCredential(loadSettings(), name));
    return 0;
  }
  const { clientId, clientSecret } = await createServiceCredential(loadSettings(), name);
  console.log(`client_id: ${clientId}\nclient_secret: ${clientSecret}`);
  console.error('The secret is shown only this once: store it with the service now.');
  return 0;
}

/** `token decode|verify <jwt>`: decode needs no settings; verify's exit code says whether the token is valid. */
async function runToken(args: string[], help: string): Promise<number> {
  const parsed = options(args, []);
  if (parsed.values.help === true) return (console.log(help), 0);
  const [action, token, ...extra] = parsed.positionals;
  if ((action !== 'decode' && action !== 'verify') || token === undefined || extra.length > 0) {
    throw new UsageError('usage: gatepass token decode|verify <jwt>');
  }
  if (action === 'decode') {
    console.log(decodeToken(token));
    return 0;
  }
  const { valid, report } = verifyToken(loadSettings(), token);
  console.log(report);
  return valid ? 0 : 1;
}

try {
  const code = await run(process.argv.slice(2));
  // serve keeps running until a signal; everything else is done.
  if (process.argv[2] !== 'serve' || code !== 0) process.exit(code);
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`gatepass: ${error.message}\nRun \`gatepass --help\` for usage.`);
    process.exit(2);
  }
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(2);
  }
  if (error instanceof KeyStoreError) console.error(`gatepass: ${error.message}`);
  else if (error instanceof FieldError) console.error(`gatepass: ${error.loc.at(-1) ?? 'input'}: ${error.msg}`);
  else if (error instanceof GatepassError) console.error(`gatepass: ${error.detail}`);
  else console.error(`gatepass: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
