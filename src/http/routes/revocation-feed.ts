import type { ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import type { NumberedRevocation } from '../../sessions/revocation-feed.js';
import { toRevocationEntry } from '../../tokens/revocation.js';
import { SERVICE_SECURITY, errorResponses } from '../schemas.js';
import type { RevocationFeedServices, RoutePlugin } from '../types.js';

/** API.md promises a heartbeat at least every 5 s; verifiers call the feed silent after 10 s by default. */
export const FEED_HEARTBEAT_MS = 2000;
const PAGE_LIMIT_MAX = 10_000;
/** A follower this far behind on live entries is cut off; it resumes from its cursor. (The catch-up waits for it instead.) */
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

const Cursor = Type.String({ pattern: '^[0-9]{1,15}$', description: 'The `cursor` of an earlier answer; omitted, the snapshot starts.' });

const RevocationEntryOut = Type.Union(
  [
    Type.Object({ kind: Type.Literal('session'), sid: Type.String(), until: Type.String({ format: 'date-time' }) }),
    Type.Object({
      kind: Type.Literal('user'),
      sub: Type.String(),
      before: Type.String({ format: 'date-time' }),
      until: Type.String({ format: 'date-time' }),
    }),
    Type.Object({ kind: Type.Literal('token'), jti: Type.String(), until: Type.String({ format: 'date-time' }) }),
  ],
  { description: 'API.md: a session, every token of a user minted before `before`, or one token' },
);

const feedSchema = {
  tags: ['services'],
  security: SERVICE_SECURITY,
  summary: 'The revocation feed (service credential)',
  description:
    "Every revocation an access token must still honour, to keep a verifier's list equal to the server's. Page with `after` = the " +
    'last `cursor` until `more` is false. Entries may repeat across pages (applying one twice is harmless); an entry is forgotten at ' +
    '`until`. With `Accept: text/event-stream`: the entries after `after` (or `Last-Event-ID`), then the live ones, as `revocation` ' +
    'events whose `id` is the cursor to resume from; a `heartbeat` event (`{"cursor"}`) follows the catch-up and comes every ' +
    `${FEED_HEARTBEAT_MS / 1000} s while the feed is current; none comes while this server may be missing revocations.`,
  querystring: Type.Object({
    after: Type.Optional(Cursor),
    limit: Type.Integer({ minimum: 1, maximum: PAGE_LIMIT_MAX, default: 1000 }),
  }),
  response: {
    200: Type.Object({ revocations: Type.Array(RevocationEntryOut), cursor: Type.String(), more: Type.Boolean() }),
    ...errorResponses(401, 422, 503),
  },
};

/** Resolves when the response can take more, or is gone; leaves no listener behind (a catch-up waits once per page). */
function drained(response: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.on('drain', done);
    response.on('close', done);
  });
}

function wantsStream(accept: string | undefined): boolean {
  return accept !== undefined && /(^|,)\s*text\/event-stream\b/i.test(accept);
}

/** Where a stream resumes: `after`, else the Last-Event-ID an EventSource sends on reconnecting, else the start. */
function resumeCursor(query: { after?: string }, lastEventId: string | string[] | undefined): number {
  if (query.after !== undefined) return Number(query.after);
  return typeof lastEventId === 'string' && /^[0-9]{1,15}$/.test(lastEventId) ? Number(lastEventId) : 0;
}

/**
 * The revocation feed for other services (API.md "Services and token endpoints"): a cursor-paged
 * snapshot, or a Server-Sent Events stream of the same entries. Only services with a live credential
 * read it: a stream checks its credential again before every batch and heartbeat, so a revoked one
 * hears nothing more and is cut off within a heartbeat.
 */
export const revocationFeedRoutes: RoutePlugin<RevocationFeedServices> = async (app, { revocations, serviceCredentials, guards }) => {
  const { feed } = revocations;
  const open = new Set<ServerResponse>();
  // Open streams would keep the server from closing: end them first (followers resume from their cursor elsewhere).
  app.addHook('preClose', async () => {
    for (const response of open) response.end();
  });

  app.get('/auth/revocations', { onRequest: guards.requireService, schema: feedSchema }, async (request, reply) => {
    const after = resumeCursor(request.query, request.headers['last-event-id']);
    if (!wantsStream(request.headers.accept)) {
      const page = await feed.page(after, request.query.limit);
      const cursor = page.entries.reduce((highest, { id }) => Math.max(highest, id), after);
      reply.header('Cache-Control', 'no-store');
      return { revocations: page.entries.map(({ revocation }) => toRevocationEntry(revocation)), cursor: String(cursor), more: page.more };
    }
    reply.hijack();
    await followFeed(request, reply.raw, after);
    return reply;
  });

  async function followFeed(request: FastifyRequest, response: ServerResponse, after: number): Promise<void> {
    let cursor = after;
    // Read and set from callbacks, so kept in an object (a plain `let` is narrowed as if nothing could change it).
    const state = { closed: false, caughtUp: false };
    const isOpen = () => !state.closed;
    let queued: NumberedRevocation[] = [];
    // Batches and heartbeats go out one after another, each after its credential check.
    let sending = Promise.resolve();

    const write = (event: string, data: object, id?: number) => {
      if (state.closed) return;
      response.write(`${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      if (response.writableLength > MAX_BUFFERED_BYTES) close();
    };
    const sendBatch = (batch: NumberedRevocation[]) => {
      for (const { id, revocation } of batch) {
        cursor = Math.max(cursor, id);
        write('revocation', toRevocationEntry(revocation), cursor);
      }
    };
    const stillAllowed = async (): Promise<boolean> => {
      const allowed = (await serviceCredentials.authenticate(request.headers.authorization).catch(() => undefined)) !== undefined;
      if (!allowed) close();
      return allowed && !state.closed;
    };
    const enqueue = (work: () => Promise<void> | void) => {
      sending = sending.then(work).catch((error: unknown) => {
        request.log.error({ err: error }, 'revocation feed stream failed');
        close();
      });
    };
    const heartbeat = () => {
      enqueue(async () => {
        // Silence is the signal: a verifier that hears no heartbeat fails closed.
        if (!feed.healthy || !revocations.available) return;
        if (await stillAllowed()) write('heartbeat', { cursor: String(cursor) });
      });
    };

    const timer = setInterval(heartbeat, FEED_HEARTBEAT_MS);
    let stopFollowing = () => {};
    function close(): void {
      if (state.closed) return;
      state.closed = true;
      clearInterval(timer);
      stopFollowing();
      open.delete(response);
      response.end();
    }
    response.on('close', close);
    open.add(response);

    response.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
      'X-Content-Type-Options': 'nosniff',
    });
    try {
      // Follow first, then catch up: a revocation committed in between is in one or the other (or both).
      stopFollowing = await feed.follow((batch) => {
        if (!state.caughtUp) {
          queued.push(...batch);
          return;
        }
        enqueue(async () => {
          if (await stillAllowed()) sendBatch(batch);
        });
      });
      if (state.closed) {
        stopFollowing();
        return;
      }
      let page;
      do {
        page = await feed.page(cursor, PAGE_LIMIT_MAX);
        sendBatch(page.entries);
        // A catch-up of 100,000 entries is ~11 MB: let the follower read each page before the next.
        if (response.writableNeedDrain) await drained(response);
      } while (page.more && isOpen());
      state.caughtUp = true;
      sendBatch(queued);
      queued = [];
      heartbeat();
    } catch (error) {
      request.log.error({ err: error }, 'revocation feed stream could not start');
      close();
    }
  }
};
