import {
  Client,
  type Implementation,
  type JSONRPCMessage,
  type Transport,
  type VersionNegotiationMode,
} from '@modelcontextprotocol/client';
import { MODERN_PROTOCOL_VERSION, type ProtocolPreference, type UpstreamInfo } from './types.js';

/**
 * The SDK's own negotiation (probe with `server/discover`, fall back to `initialize`, the -32022
 * corrective continuation) is subtle and ours to reuse, not to rewrite. The relay hands the SDK
 * client a transport for the handshake and for the rare protocol paths (ping from the server,
 * subscriptions); the hot path then writes JSON-RPC directly.
 */
export function negotiationMode(preference: ProtocolPreference): VersionNegotiationMode {
  switch (preference) {
    case 'auto':
      return 'auto';
    case 'modern':
      return { pin: MODERN_PROTOCOL_VERSION };
    case 'legacy':
      return 'legacy';
  }
}

export function createHandshakeClient(
  clientInfo: Implementation,
  preference: ProtocolPreference,
  probeTimeoutMs: number,
) {
  return new Client(clientInfo, {
    // Declared so that servers may ask: the relay passes such requests to the caller that can
    // answer them (a gateway client), and answers "method not found" where nobody can.
    capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } },
    versionNegotiation: { mode: negotiationMode(preference), probe: { timeoutMs: probeTimeoutMs } },
  });
}

export function describeClient(client: Client): UpstreamInfo {
  const era = client.getProtocolEra() === 'modern' ? 'modern' : 'legacy';
  return {
    era,
    protocolVersion: client.getNegotiatedProtocolVersion() ?? (era === 'modern' ? MODERN_PROTOCOL_VERSION : 'unknown'),
    serverInfo: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions(),
  };
}

/**
 * A transport whose wire is owned by someone else (a child process's pipes): the owner feeds it the
 * messages that belong to the SDK client and carries what the SDK sends.
 */
export class BridgeTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T) => void) | undefined;
  #closed = false;

  readonly #write: (message: JSONRPCMessage) => void;

  constructor(write: (message: JSONRPCMessage) => void) {
    this.#write = write;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  send(message: JSONRPCMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('transport closed'));
    this.#write(message);
    return Promise.resolve();
  }

  deliver(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.onclose?.();
    return Promise.resolve();
  }
}
