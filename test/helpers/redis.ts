import { createClient } from 'redis';

/** Whether a Redis answers at `url` (connect and PING within half a second). */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 500, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    await client.close();
    return true;
  } catch {
    if (client.isOpen) client.destroy();
    return false;
  }
}

/** Deletes every key matching `pattern` (a test run's own prefix). */
export async function removeRedisKeys(url: string, pattern: string): Promise<void> {
  const client = createClient({ url });
  client.on('error', () => undefined);
  await client.connect();
  for await (const keys of client.scanIterator({ MATCH: pattern, COUNT: 500 }))
    if (keys.length > 0) await client.unlink(keys);
  await client.close();
}
