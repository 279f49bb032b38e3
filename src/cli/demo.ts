import { inspect } from 'node:util';
import { demoUpstreamConfig } from '../demo/index.js';
import { createProxyFactory } from '../proxy/index.js';

function text(result: { content?: unknown }): string {
  const first = (result.content as { type: string; text?: string }[] | undefined)?.[0];
  return first?.type === 'text' ? (first.text ?? '') : JSON.stringify(result.content);
}

/**
 * The seed's examples, run in TypeScript against the bundled demo upstream over stdio: connection
 * check, tool calls, concurrent batches, a pipeline, a resource and a prompt.
 */
export async function runDemo(
  write: (line: string) => void = (line) => process.stdout.write(line + '\n'),
): Promise<void> {
  const config = { ...demoUpstreamConfig(), connectionPoolSize: 20 };
  await using factory = await createProxyFactory(config);
  write("mcp-relay demo: the seed's examples against the bundled demo MCP server (stdio)\n");

  const report = await factory.validateConnection();
  const { capabilities: _capabilities, ...summary } = report;
  write(`validateConnection() → ${inspect(summary, { depth: 3, breakLength: 120 })}`);
  if (!report.healthy) throw new Error(`the demo upstream did not start: ${report.error?.message}`);

  const tools = await factory.listTools();
  write(`listTools() → ${tools.map((t) => t.name).join(', ')}`);

  const add = factory.createToolProxy('add');
  write(`add.execute({ a: 2, b: 3 }) → ${text(await add.execute({ a: 2, b: 3 }))}`);

  // The seed's optimized_batch_processing: batches of 10, each batch concurrent.
  const echo = factory.createToolProxy('echo');
  const items = Array.from({ length: 50 }, (_, i) => ({ text: `item-${i}` }));
  let started = performance.now();
  const results = [];
  for (let i = 0; i < items.length; i += 10) {
    results.push(...(await Promise.allSettled(items.slice(i, i + 10).map((item) => echo.execute(item)))));
  }
  const ok = results.filter((r) => r.status === 'fulfilled').length;
  write(`batch processing: ${ok}/${items.length} ok in batches of 10, ${(performance.now() - started).toFixed(1)} ms`);

  // The seed's pipeline_processing: three stages per item, items concurrent.
  started = performance.now();
  const piped = await Promise.all(
    [1, 2, 3, 4, 5].map(async (n) => {
      const stage1 = await add.execute({ a: n, b: 10 });
      const stage2 = await echo.execute({ text: `sum=${text(stage1)}` });
      return text(await echo.execute({ text: `${text(stage2)} done` }));
    }),
  );
  write(`pipeline processing: ${piped.join(' | ')} (${(performance.now() - started).toFixed(1)} ms)`);

  // Many concurrent callers on one stdio pool: every response matched to its caller.
  started = performance.now();
  const burst = await Promise.all(Array.from({ length: 1000 }, (_, i) => echo.execute({ text: String(i) })));
  const matched = burst.every((result, i) => text(result) === String(i));
  const seconds = (performance.now() - started) / 1000;
  write(`1000 concurrent calls: all matched to their callers = ${matched}, ${Math.round(1000 / seconds)} calls/s`);

  const readme = await factory.createResourceProxy('demo://static/readme').read();
  const first = readme.contents[0] as { text?: string } | undefined;
  write(`resource demo://static/readme → ${JSON.stringify((first?.text ?? '').slice(0, 60))}…`);

  const greeting = await factory.createPromptProxy('greet').get({ name: 'Ada' });
  const message = greeting.messages[0]?.content as { text?: string } | undefined;
  write(`prompt greet({ name: 'Ada' }) → ${JSON.stringify(message?.text ?? '')}`);

  const failed = await factory.createToolProxy('fail').execute({ message: 'as designed' });
  write(`a tool's own failure is a result, not an exception: isError=${failed.isError} "${text(failed)}"`);
}
