// Verifies that the services named by GATEPASS_TEST_POSTGRES_URL and GATEPASS_TEST_REDIS_URL answer,
// and that GATEPASS_TEST_CHROME names a Chromium that runs.
// Exits non-zero, naming the one that does not, so that CI fails loudly instead of skipping suites.
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import net from 'node:net';
import pg from 'pg';

const TIMEOUT_MS = 5000;

async function checkPostgres(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: TIMEOUT_MS });
  await client.connect();
  const { rows } = await client.query('select version() as version');
  await client.end();
  return rows[0].version.split(' ').slice(0, 2).join(' ');
}

function checkRedis(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port || 6379) });
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), TIMEOUT_MS);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      clearTimeout(timer);
      socket.end();
      const answer = data.toString().trim();
      answer === '+PONG' ? resolve('PONG') : reject(new Error(`unexpected answer ${answer}`));
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** The binary must exist, be executable and print its version (the browser suite drives it headless). */
function checkChrome(binary) {
  accessSync(binary, constants.X_OK);
  return new Promise((resolve, reject) => {
    execFile(binary, ['--version'], { timeout: TIMEOUT_MS * 2 }, (error, stdout) => {
      if (error) reject(error);
      else resolve(stdout.trim());
    });
  });
}

const checks = [
  ['PostgreSQL', 'GATEPASS_TEST_POSTGRES_URL', checkPostgres],
  ['Redis', 'GATEPASS_TEST_REDIS_URL', checkRedis],
  ['Chromium', 'GATEPASS_TEST_CHROME', checkChrome],
];
let failed = false;
for (const [name, variable, check] of checks) {
  const url = process.env[variable];
  if (!url) {
    console.error(`${name}: ${variable} is not set`);
    failed = true;
    continue;
  }
  try {
    console.log(`${name}: ${await check(url)}`);
  } catch (error) {
    console.error(`${name} at ${variable} is unusable: ${error.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
