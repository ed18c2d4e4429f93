import { createHmac, createSecretKey, randomBytes } from 'node:crypto';
import { createVerifier } from 'fast-jwt';
import jwt from 'jsonwebtoken';
import { loadSettings } from '../../src/config/settings.js';
import { verificationFixture, type VerificationFixture } from '../lib/gatepass-internals.js';
import { runMicro, type MicroCase, type MicroResult } from '../lib/micro.js';
import { fmt, fmtRatio, ratio, table, type BenchContext, type Section, type SectionOutput } from '../lib/report.js';
import { scratchDir } from '../lib/servers.js';

/** Sessions already revoked in the list, so the lookup runs against a populated Map. */
const REVOKED_SESSIONS = 10_000;

/**
 * 1. Verification floor: gatepass's access-token check against a bare HMAC-SHA256 of the same
 * token and against jsonwebtoken and fast-jwt, in process, interleaved rounds, medians.
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
    // The app is built (and its services used) but never listens: this section is in process.
    const fixture = await verificationFixture(settings, cwd, REVOKED_SESSIONS);
    try {
      return measure(fixture, accessSecret, context);
    } finally {
      await fixture.app.close();
    }
  },
};

function measure(fixture: VerificationFixture, accessSecret: string, context: BenchContext): SectionOutput {
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
  const options = context.quick ? { warmupMs: 100, roundMs: 40, rounds: 3 } : { warmupMs: 400, roundMs: 150, rounds: 9 };
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
