import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import jwt from 'jsonwebtoken';
import { loadSettings } from '../../src/config/settings.js';
import {
  createServiceCredential,
  hmacVerifier,
  persistRevocations,
  refusalCode,
  verificationFixture,
  type VerificationFixture,
} from '../lib/gatepass-internals.js';
import { runMicro, runMicroAsync, type MicroCase, type MicroCaseAsync, type MicroOptions, type MicroResult } from '../lib/micro.js';
import { fmt, fmtRatio, ratio, table, type BenchContext, type Section, type SectionOutput } from '../lib/report.js';
import { scratchDir } from '../lib/servers.js';

/** Sessions already revoked in the list, so the lookup runs against a populated Map. */
const REVOKED_SESSIONS = 10_000;
/** Revocations the feed serves to the `gatepass/verify` row. */
const FEED_REVOCATIONS = 100_000;
/** The catch-up of the feed must end within this, or the section fails. */
const CATCH_UP_TIMEOUT_MS = 120_000;

/**
 * 1. Verification floor: gatepass's access-token check against a bare HMAC-SHA256 of the same
 * token and against jsonwebtoken and fast-jwt, in process, interleaved rounds, medians. Then
 * `gatepass/verify` following the app's revocation feed (100,000 revocations) over HTTP on
 * 127.0.0.1, against the same floor measured in the same async harness.
 */
export const verificationFloor: Section = {
  id: 'verification',
  title: '1. Verification floor (ns per access-token check, in process)',
  async run(context) {
    const accessSecret = randomBytes(32).toString('hex');
    const cwd = scratchDir(context, 'verification');
    const settings = loadSettings(
      {
        NODE_ENV: 'production',
        JWT_SECRET: accessSecret,
        JWT_REFRESH_SECRET: randomBytes(32).toString('hex'),
        DATABASE_URL: 'sqlite::memory:',
        LOG_LEVEL: 'warn',
      },
      { cwd },
    );
    // The app is built and its services used in process; it listens (127.0.0.1, a free port) only
    // for the revocation feed of the gatepass/verify row, after the in-process cases.
    const fixture = await verificationFixture(settings, cwd, REVOKED_SESSIONS);
    try {
      const inProcess = measure(fixture, accessSecret, context);
      const following = await measureFollowingVerifier(fixture, accessSecret, context, inProcess.floorNs);
      return {
        markdown: [...inProcess.markdown, '', ...following.markdown],
        data: { ...(inProcess.data as Record<string, unknown>), feedVerifier: following.data },
        ratios: [...inProcess.ratios, ...following.ratios],
      };
    } finally {
      await fixture.app.close();
    }
  },
};

function microOptions(context: BenchContext): MicroOptions {
  return context.quick ? { warmupMs: 100, roundMs: 40, rounds: 3 } : { warmupMs: 400, roundMs: 150, rounds: 9 };
}

/** Resolves with `promise`, or rejects once `ms` have passed. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The gatepass/verify row: the app listens, its database gets FEED_REVOCATIONS revocations, a
 * verifier with a service credential follows `/auth/revocations` until caught up (timed), proves
 * its list holds them, then `await verifier.verify(token)` is measured against the bare HMAC in
 * the same async harness (every call awaited, interleaved rounds).
 */
async function measureFollowingVerifier(
  fixture: VerificationFixture,
  accessSecret: string,
  context: BenchContext,
  /** The floor of the synchronous cases above, to show what the await adds. */
  syncFloorNs: number,
): Promise<SectionOutput> {
  const { app, token } = fixture;
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const persistStarted = performance.now();
  const samples = await persistRevocations(app.gatepass, FEED_REVOCATIONS);
  const persistMs = performance.now() - persistStarted;
  context.log(`  ${fmt(FEED_REVOCATIONS)} revocations stored in ${fmt(persistMs / 1000, 1)} s; following ${address}/auth/revocations`);
  const credential = await createServiceCredential(app.gatepass, 'bench-verifier');

  const bare = hmacVerifier(accessSecret);
  const catchUpStarted = performance.now();
  // What the follower reports (e.g. a reconnection during the catch-up) goes into the results.
  const feedMessages: string[] = [];
  const record = (message: string) => {
    feedMessages.push(message);
    context.log(`  verifier: ${message}`);
  };
  const following = hmacVerifier(accessSecret, {
    url: `${address}/auth/revocations`,
    ...credential,
    log: { warn: record, info: record },
  });
  try {
    await within(following.ready(), CATCH_UP_TIMEOUT_MS, `the catch-up of ${fmt(FEED_REVOCATIONS)} revocations`);
    const catchUpMs = performance.now() - catchUpStarted;
    context.log(`  verifier caught up in ${fmt(catchUpMs)} ms`);
    const catchUpMessages = [...feedMessages];

    // The list must hold what was stored (the first and last session, a token, a cutoff), and the measured token must pass.
    for (const { kind, token: revoked } of samples.refused) {
      const code = await refusalCode(following, revoked);
      if (code !== 'token_revoked')
        throw new Error(`a token refused by a ${kind} revocation was answered ${code ?? 'accepted'}, not token_revoked`);
    }
    for (const verifier of [following, bare]) {
      const code = await refusalCode(verifier, token);
      if (code !== undefined) throw new Error(`gatepass/verify refused the measured token: ${code}`);
    }

    const keyObject = createSecretKey(Buffer.from(accessSecret, 'utf8'));
    const keyBuffer = Buffer.from(accessSecret, 'utf8');
    const signingInput = (t: string) => t.slice(0, t.lastIndexOf('.'));
    const names = {
      hmacKeyObject: 'bare HMAC-SHA256, KeyObject key (awaited)',
      hmacBuffer: 'bare HMAC-SHA256, Buffer key (awaited)',
      following: `gatepass/verify following the feed, ${fmt(FEED_REVOCATIONS)} revocations`,
      bare: 'gatepass/verify without a revocation feed',
    };
    // The HMACs are wrapped in async functions: each case then costs its work plus one promise and one await.
    const cases: MicroCaseAsync[] = [
      { name: names.hmacKeyObject, fn: async () => createHmac('sha256', keyObject).update(signingInput(token)).digest() },
      { name: names.hmacBuffer, fn: async () => createHmac('sha256', keyBuffer).update(signingInput(token)).digest() },
      { name: names.following, fn: () => following.verify(token) },
      { name: names.bare, fn: () => bare.verify(token) },
    ];
    const options = microOptions(context);
    context.log(`  ${cases.length} async cases × ${options.rounds} rounds of ~${options.roundMs} ms`);
    const results = await runMicroAsync(cases, options);
    const byName = (name: string): MicroResult => {
      const found = results.find((r) => r.name === name);
      if (found === undefined) throw new Error(`no result for ${name}`);
      return found;
    };
    const hmacKeyObject = byName(names.hmacKeyObject);
    const hmacBuffer = byName(names.hmacBuffer);
    const floor = hmacKeyObject.nsPerOp <= hmacBuffer.nsPerOp ? hmacKeyObject : hmacBuffer;
    const followingResult = byName(names.following);
    const bareResult = byName(names.bare);
    const overFloor = followingResult.nsPerOp / floor.nsPerOp;

    const markdown = [
      `**gatepass/verify with ${fmt(FEED_REVOCATIONS)} revocations.** The app above listens on 127.0.0.1 (a free port); ` +
        `${fmt(FEED_REVOCATIONS)} revocations are stored in its database through \`Revocations.persist\` in transactions of 5,000 ` +
        `(${fmt(samples.counts.session)} sessions, ${fmt(samples.counts.user)} role-change cutoffs of other users, ${fmt(samples.counts.token)} single tokens; ` +
        `${fmt(persistMs / 1000, 1)} s) and not announced to the app's own list, so the in-process cases above are unchanged. ` +
        `A \`gatepass/verify\` verifier (\`createVerifier({ secret, revocations })\`, a service credential) follows \`GET /auth/revocations\` ` +
        `(Server-Sent Events) in this process: **its catch-up of ${fmt(FEED_REVOCATIONS)} entries took ${fmt(catchUpMs)} ms** ` +
        `(from createVerifier to \`ready()\`, measured). Its list then refused, as token_revoked, tokens of the first and the last revoked session, ` +
        `of a revoked jti and of a user minted before their cutoff, and accepted the token measured here.` +
        (catchUpMessages.length === 0
          ? ' The follower reported nothing during the catch-up.'
          : ` During the catch-up the follower reported: ${catchUpMessages.map((m) => `“${m}”`).join('; ')}. ` +
            'Server and verifier share this process and its event loop, so the verifier cannot read while the server writes a page of ' +
            'the catch-up: the server cuts a stream once more than 8 MiB wait in its buffer (routes/revocation-feed.ts), and the verifier ' +
            'resumes from its cursor; the time above includes that reconnection.'),
      '',
      `\`await verifier.verify(token)\` is measured against the bare HMAC in one async harness (every call awaited, so each case also pays ` +
        `one promise and one await; ${options.rounds} interleaved rounds of ~${options.roundMs} ms after a ${options.warmupMs} ms warm-up, median round; ` +
        `the event loop gets a turn between rounds, so the feed's heartbeats never land inside a timed loop):`,
      '',
      ...table(
        ['case', 'ns/op', 'ops/s', '× floor'],
        results.map((r) => [r.name, fmt(r.nsPerOp), fmt(r.opsPerSecond), fmtRatio(r.nsPerOp / floor.nsPerOp)]),
      ),
      '',
      `The floor here is the faster awaited HMAC (${floor.name.replace('bare HMAC-SHA256, ', '').replace(' (awaited)', '')}): ` +
        `${fmt(floor.nsPerOp)} ns, ${fmt(floor.nsPerOp - syncFloorNs)} ns more than the synchronous floor above (the promise and the await, ` +
        `and the noise between two harnesses). gatepass/verify following the feed costs ${fmtRatio(overFloor)} the floor; ` +
        `without a feed, ${fmtRatio(bareResult.nsPerOp / floor.nsPerOp)}: the revocation lookup in a list of ${fmt(FEED_REVOCATIONS)} ` +
        `adds ${fmt(followingResult.nsPerOp - bareResult.nsPerOp)} ns (two medians subtracted, so noisy).`,
    ];
    return {
      markdown,
      data: {
        revocations: FEED_REVOCATIONS,
        kinds: samples.counts,
        persistMs,
        catchUpMs,
        catchUpMessages,
        options,
        results,
        floor: floor.name,
        overFloor,
      },
      ratios: [
        ratio({
          section: 'verification',
          name: `gatepass/verify with ${fmt(FEED_REVOCATIONS)} revocations within 3× of bare HMAC`,
          definition: 'await verifier.verify(token) ns/op (following the feed) ÷ awaited bare HMAC-SHA256 ns/op, same async harness',
          value: overFloor,
          comparator: '<=',
          threshold: 3,
          unit: '×',
        }),
      ],
    };
  } finally {
    await following.close();
    await bare.close();
  }
}

function measure(fixture: VerificationFixture, accessSecret: string, context: BenchContext): SectionOutput & { floorNs: number } {
  const { token } = fixture;
  const authorization = `Bearer ${token}`;
  const keyObject = createSecretKey(Buffer.from(accessSecret, 'utf8'));
  const keyBuffer = Buffer.from(accessSecret, 'utf8');
  // fast-jwt types the payload as `any`; only its being returned (so that the call is not optimised away) matters here.
  const fastJwtVerify: (token: string) => unknown = createVerifier({ key: accessSecret, algorithms: ['HS256'] });

  // Every case must accept the token, or it would be timing its error path.
  fixture.check(token);
  fixture.authenticate(authorization);
  jwt.verify(token, accessSecret, { algorithms: ['HS256'] });
  fastJwtVerify(token);

  const cases: MicroCase[] = [
    {
      name: 'bare HMAC-SHA256, KeyObject key',
      fn: () =>
        createHmac('sha256', keyObject)
          .update(token.slice(0, token.lastIndexOf('.')))
          .digest(),
    },
    {
      name: 'bare HMAC-SHA256, Buffer key',
      fn: () =>
        createHmac('sha256', keyBuffer)
          .update(token.slice(0, token.lastIndexOf('.')))
          .digest(),
    },
    { name: 'gatepass: verifyAccessToken + revocation lookup', fn: () => fixture.check(token) },
    { name: 'gatepass: verifyAccessToken alone', fn: () => fixture.verifyOnly(token) },
    { name: 'gatepass: revocation lookup alone', fn: () => fixture.lookupOnly() },
    {
      name: 'gatepass: guard authenticate() as a route runs it (+ Bearer parsing, /metrics timing)',
      fn: () => fixture.authenticate(authorization),
    },
    { name: 'fast-jwt verify (createVerifier, no cache)', fn: () => fastJwtVerify(token) },
    { name: 'jsonwebtoken verify, string secret (as the seeds)', fn: () => jwt.verify(token, accessSecret, { algorithms: ['HS256'] }) },
    { name: 'jsonwebtoken verify, KeyObject secret', fn: () => jwt.verify(token, keyObject, { algorithms: ['HS256'] }) },
  ];
  const options = microOptions(context);
  context.log(`  ${cases.length} cases × ${options.rounds} rounds of ~${options.roundMs} ms`);
  const results = runMicro(cases, options);
  const byName = (name: string): MicroResult => {
    const found = results.find((r) => r.name === name);
    if (found === undefined) throw new Error(`no result for ${name}`);
    return found;
  };

  const hmacKeyObject = byName('bare HMAC-SHA256, KeyObject key');
  const hmacBuffer = byName('bare HMAC-SHA256, Buffer key');
  const floor = hmacKeyObject.nsPerOp <= hmacBuffer.nsPerOp ? hmacKeyObject : hmacBuffer;
  const gatepass = byName('gatepass: verifyAccessToken + revocation lookup');
  const lookup = byName('gatepass: revocation lookup alone');
  const fastJwt = byName('fast-jwt verify (createVerifier, no cache)');
  const jsonwebtoken = byName('jsonwebtoken verify, string secret (as the seeds)');
  const guard = byName('gatepass: guard authenticate() as a route runs it (+ Bearer parsing, /metrics timing)');
  const overFloor = gatepass.nsPerOp / floor.nsPerOp;
  const verifyAlone = byName('gatepass: verifyAccessToken alone');
  const lookupShare = lookup.nsPerOp / gatepass.nsPerOp;
  // A second estimate: what the full check costs beyond verification alone (noisier: two medians subtracted).
  const differenceShare = (gatepass.nsPerOp - verifyAlone.nsPerOp) / gatepass.nsPerOp;

  const markdown = [
    `Token: an HS256 access token issued by the app's TokenService (${token.length} characters); the app's RevocationList holds ${fmt(REVOKED_SESSIONS)} revoked sessions. ` +
      `${options.rounds} interleaved rounds of ~${options.roundMs} ms per case after a ${options.warmupMs} ms warm-up; the median round is shown.`,
    '',
    ...table(
      ['case', 'ns/op', 'ops/s', '× floor'],
      results.map((r) => [r.name, fmt(r.nsPerOp), fmt(r.opsPerSecond), fmtRatio(r.nsPerOp / floor.nsPerOp)]),
    ),
    '',
    `The floor is the faster bare HMAC (${floor.name.replace('bare HMAC-SHA256, ', '')}): ${fmt(floor.nsPerOp)} ns. ` +
      `gatepass's full check costs ${fmtRatio(overFloor)} the floor; the revocation lookup is ${fmt(lookup.nsPerOp, 1)} ns, ` +
      `${fmt(lookupShare * 100, 1)}% of the check (the full check minus verification alone gives ${fmt(differenceShare * 100, 1)}%, ` +
      `a noisier estimate from two medians). gatepass is ${fmtRatio(fastJwt.nsPerOp / gatepass.nsPerOp)} as fast as fast-jwt and ` +
      `${fmtRatio(jsonwebtoken.nsPerOp / gatepass.nsPerOp)} as fast as jsonwebtoken with a string secret. ` +
      `The guard's authenticate(), which adds the Bearer parsing and the timing that feeds /metrics, costs ${fmtRatio(guard.nsPerOp / floor.nsPerOp)} the floor.`,
  ];

  return {
    floorNs: floor.nsPerOp,
    markdown,
    data: {
      tokenLength: token.length,
      revokedSessions: REVOKED_SESSIONS,
      options,
      results,
      floor: floor.name,
      overFloor,
      lookupShare,
      differenceShare,
    },
    ratios: [
      ratio({
        section: 'verification',
        name: 'verification within 3× of bare HMAC',
        definition: 'gatepass check ns/op ÷ bare HMAC-SHA256 ns/op',
        value: overFloor,
        comparator: '<=',
        threshold: 3,
        unit: '×',
      }),
    ],
  };
}
