import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Kysely } from 'kysely';
import { loadSettings } from '../../src/config/settings.js';
import { buildApp, type GatepassApp } from '../../src/http/app.js';
import { PasswordHasher } from '../../src/passwords/hashing.js';
import { openDatabase } from '../../src/store/database.js';
import { migrateToLatest } from '../../src/store/migrations.js';
import { createTestApp, createTestDatabase, type Backend, type TestApp } from '../helpers/app.js';
import { assertError, claimsOf, post } from '../helpers/client.js';

/**
 * Issue 12, property 10: which account an email names is decided on NFKC and case folding, so a
 * look-alike (fullwidth letters, ß for ss) can neither register a second account nor miss the first
 * at login; and the migration that introduced the key reports, never merges, existing collisions.
 */

const PASSWORD = 'Lantern-Orchid-Basalt-7710';
const PID = process.pid;

async function registered(app: GatepassApp, email: string): Promise<number> {
  const response = await post(app, '/auth/register', { email, password: PASSWORD });
  assert.equal(response.statusCode, 201, `${email}: ${response.body}`);
  return response.json<{ id: number }>().id;
}

/** Logs in with `email` and returns the user id the tokens are for. */
async function signedInAs(app: GatepassApp, email: string, password = PASSWORD): Promise<number> {
  const response = await post(app, '/auth/login', { email, password });
  assert.equal(response.statusCode, 200, `${email}: ${response.body}`);
  return Number(claimsOf(response.json<{ access_token: string }>().access_token).sub);
}

/** `text` with its ASCII letters and digits in fullwidth form (U+FF01…), as a look-alike attack writes them. */
function fullwidth(text: string, pick: (index: number) => boolean = () => true): string {
  return text.replace(/[A-Za-z0-9]/g, (char, index: number) => (pick(index) ? String.fromCodePoint(char.codePointAt(0)! + 0xfee0) : char));
}

export function defineEmailIdentitySuite(backend: Backend): void {
  describe(`one account per email under NFKC and case folding (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend);
    });
    after(() => t.close());

    it('a fullwidth or mixed look-alike of a registered email answers 409 email_taken', async () => {
      const email = `carol.${PID}@example.com`;
      const id = await registered(t.app, email);
      for (const lookAlike of [`ｃarol.${PID}@example.com`, fullwidth(email), fullwidth(email.toUpperCase(), (i) => i % 2 === 0)]) {
        assert.notEqual(lookAlike.normalize('NFC').toLowerCase(), email, 'a look-alike, not the same NFC lower-case text');
        assertError(
          await post(t.app, '/auth/register', { email: lookAlike, password: PASSWORD }),
          409,
          'Email already registered',
          'email_taken',
        );
      }
      assert.equal(await signedInAs(t.app, email), id);
    });

    it('login with a look-alike form finds the same account (and a wrong password is still wrong)', async () => {
      const email = `dave.${PID}@example.com`;
      const id = await registered(t.app, email);
      assert.equal(await signedInAs(t.app, fullwidth(email)), id);
      assert.equal(await signedInAs(t.app, `ｄave.${PID}@ｅxample.com`), id);
      assertError(
        await post(t.app, '/auth/login', { email: fullwidth(email), password: 'Not-The-Password-9' }),
        401,
        'Incorrect email or password',
        'invalid_credentials',
      );
    });

    it('case folding beyond lower-casing: ß is ss, so strasse@ and straße@ are one address', async () => {
      const id = await registered(t.app, `strasse.${PID}@example.com`);
      assertError(
        await post(t.app, '/auth/register', { email: `straße.${PID}@example.com`, password: PASSWORD }),
        409,
        'Email already registered',
        'email_taken',
      );
      assert.equal(await signedInAs(t.app, `STRAßE.${PID}@example.com`), id);
    });

    it('the email is kept as it was typed (normalised as before): the look-alike account shows its own form', async () => {
      const email = `ｅve.${PID}@example.com`;
      const response = await post(t.app, '/auth/register', { email, password: PASSWORD });
      assert.equal(response.statusCode, 201, response.body);
      assert.equal(response.json<{ email: string }>().email, email);
      assertError(
        await post(t.app, '/auth/register', { email: `eve.${PID}@example.com`, password: PASSWORD }),
        409,
        'Email already registered',
        'email_taken',
      );
    });
  });

  describe(`one lockout per account, whichever look-alike form is typed (${backend})`, () => {
    let t: TestApp;
    before(async () => {
      t = await createTestApp(backend, { ACCOUNT_LOCKOUT_THRESHOLD: '2', ACCOUNT_LOCKOUT_SECONDS: '600' });
    });
    after(() => t.close());

    it('two wrong passwords under two look-alike forms lock the account: the right password then answers 429', async () => {
      const email = `heidi.${PID}@example.com`;
      await registered(t.app, email);
      for (const form of [fullwidth(email, (i) => i === 0), fullwidth(email, (i) => i === 1)]) {
        assertError(
          await post(t.app, '/auth/login', { email: form, password: 'Not-The-Password-9' }),
          401,
          'Incorrect email or password',
          'invalid_credentials',
        );
      }
      const locked = await post(t.app, '/auth/login', { email, password: PASSWORD });
      assert.equal(locked.statusCode, 429, locked.body);
    });
  });

  describe(`migration 0005 reports existing look-alike accounts and keeps them apart (${backend})`, () => {
    const warnings: string[] = [];
    let database: Awaited<ReturnType<typeof createTestDatabase>>;
    let app: GatepassApp | undefined;
    const seeded: { email: string; id: number }[] = [];

    before(async () => {
      database = await createTestDatabase(backend);
      const handle = openDatabase(database.url, database.cwd);
      try {
        // The schema as it was before identity keys, with accounts registered under NFC only.
        await migrateToLatest(handle, { upTo: '0004_retention_indexes' });
        const hash = await new PasswordHasher(1).hash(PASSWORD);
        const db = handle.db as unknown as Kysely<{
          users: {
            id?: number;
            email: string;
            password_hash: string;
            full_name: string | null;
            is_active: number;
            created_at: number;
            updated_at: number;
          };
        }>;
        for (const email of ['carol@example.com', 'frank@example.com', 'ｃarol@example.com', 'ＣＡＲＯＬ@example.com']) {
          const now = Date.now();
          const row = await db
            .insertInto('users')
            .values({
              email: email.normalize('NFC').toLowerCase(),
              password_hash: hash,
              full_name: null,
              is_active: 1,
              created_at: now,
              updated_at: now,
            })
            .returning('id')
            .executeTakeFirstOrThrow();
          seeded.push({ email, id: row.id ?? 0 });
        }
        const applied = await migrateToLatest(handle, { log: { warn: (message) => warnings.push(message) } });
        assert.ok(applied.includes('0005_email_key'), applied.join(', '));
      } finally {
        await handle.close();
      }
    });
    after(async () => {
      await app?.close();
      await database.drop();
    });

    it('one warning names every colliding account id, and no other', () => {
      const [carol, frank, lookAlike, shouting] = seeded;
      assert.ok(carol && frank && lookAlike && shouting);
      assert.equal(warnings.length, 1, warnings.join('\n'));
      const warning = warnings[0] ?? '';
      for (const { id } of [carol, lookAlike, shouting]) assert.match(warning, new RegExp(`\\b${id}\\b`), warning);
      assert.doesNotMatch(warning, new RegExp(`\\b${frank.id}\\b`), warning);
      assert.doesNotMatch(warning, /@/, 'the warning names accounts by id, not by email');
    });

    it('every colliding account survives and signs in with its own email; the oldest owns the address; new look-alikes are refused', async () => {
      const settings = loadSettings(
        {
          NODE_ENV: 'test',
          JWT_SECRET: 'a'.repeat(64),
          JWT_REFRESH_SECRET: 'b'.repeat(64),
          DATABASE_URL: database.url,
          LOGIN_RATE_LIMIT_PER_MINUTE: '0',
          ACCOUNT_LOCKOUT_THRESHOLD: '0',
        },
        { cwd: database.cwd },
      );
      app = await buildApp(settings, { cwd: database.cwd });
      for (const { email, id } of seeded) assert.equal(await signedInAs(app, email), id, email);
      const [carol] = seeded;
      assert.ok(carol);
      // A form that is exactly none of them names the owner of the address: the oldest account.
      assert.equal(await signedInAs(app, 'Ｃａｒｏl@example.com'), carol.id);
      assertError(
        await post(app, '/auth/register', { email: 'ｃａrol@example.com', password: PASSWORD }),
        409,
        'Email already registered',
        'email_taken',
      );
      assert.equal((await post(app, '/auth/register', { email: 'grace@example.com', password: PASSWORD })).statusCode, 201);
    });
  });
}
