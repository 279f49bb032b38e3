import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';

const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

for (const mode of ['auto', 'legacy'] as const) {
  const revision = mode === 'auto' ? '2026-07-28' : '2025-11-25';
  describe(`mcp-relay stdio with a ${revision} client`, () => {
    test('negotiates, lists, calls with progress, reads and gets through the gateway process', async () => {
      const client = new Client({ name: 'stdio-test', version: '1.0.0' }, { versionNegotiation: { mode } });
      await client.connect(
        new StdioClientTransport({ command: process.execPath, args: ['--import', 'tsx', cli, 'stdio'] }),
      );
      try {
        assert.equal(client.getNegotiatedProtocolVersion(), revision);
        assert.equal(client.getServerVersion()?.name, 'mcp-relay');
        const tools = (await client.listTools()).tools.map((t) => t.name);
        assert.ok(tools.includes('echo') && tools.includes('counter'));
        assert.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'via stdio' } })), 'via stdio');
        const updates: number[] = [];
        await client.callTool(
          { name: 'slow', arguments: { ms: 150, steps: 3 } },
          { onprogress: (p) => updates.push(p.progress) },
        );
        assert.ok(updates.length >= 2, `progress relayed: ${updates.join(',')}`);
        const readme = await client.readResource({ uri: 'demo://static/readme' });
        assert.equal(readme.contents[0]?.uri, 'demo://static/readme');
        const prompt = await client.getPrompt({ name: 'greet', arguments: { name: 'Ada' } });
        assert.match(JSON.stringify(prompt.messages), /Ada/);
        await assert.rejects(client.callTool({ name: 'nope', arguments: {} }), /Unknown tool: nope/);
      } finally {
        await client.close();
      }
    });
  });
}
