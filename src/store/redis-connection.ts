import { Cluster, Redis } from 'ioredis';

/** A connection to a single Redis or to a Redis Cluster; both speak the commands gatepass uses. */
export type RedisConnection = Redis | Cluster;

const CONNECTION_OPTIONS = {
  // Reconnect quickly and forever; while disconnected, commands fail at once instead of queueing.
  retryStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  lazyConnect: true,
};

/**
 * REDIS_URL names one server (`redis://host:6379`) or, comma-separated, the seed nodes of a Redis
 * Cluster (`redis://a:7000,redis://b:7001`). `queueWhileOffline` lets a subscriber queue its
 * SUBSCRIBE until the connection is up.
 */
export function connectRedis(url: string, queueWhileOffline = false): RedisConnection {
  const options = { ...CONNECTION_OPTIONS, enableOfflineQueue: queueWhileOffline };
  const nodes = url.split(',').map((node) => node.trim());
  if (nodes.length === 1) return new Redis(url, options);
  return new Cluster(
    nodes.map((node) => {
      const { hostname, port, password, username } = new URL(node);
      return { host: hostname, port: Number(port || 6379), ...(password !== '' && { password }), ...(username !== '' && { username }) };
    }),
    {
      clusterRetryStrategy: options.retryStrategy,
      enableOfflineQueue: options.enableOfflineQueue,
      lazyConnect: true,
      redisOptions: { maxRetriesPerRequest: 1, tls: nodes[0]?.startsWith('rediss://') ? {} : undefined },
    },
  );
}
