import type { Client, McpSubscription, SubscriptionFilter } from '@modelcontextprotocol/client';

import type { ChangeSubscription } from './types.js';

/** After a listen stream the server dropped, wait this long before opening it again. */
const RELISTEN_DELAY_MS = 1000;

/**
 * The change notifications an upstream has been asked for: a union that only grows (a URI once
 * subscribed stays subscribed for the life of the upstream).
 */
export class WantedChanges {
  toolsListChanged = false;
  promptsListChanged = false;
  resourcesListChanged = false;
  readonly uris = new Set<string>();

  /** Adds `subscription`; true when it asked for something new. */
  merge(subscription: ChangeSubscription): boolean {
    let changed = false;
    if (subscription.toolsListChanged === true && !this.toolsListChanged) changed = this.toolsListChanged = true;
    if (subscription.promptsListChanged === true && !this.promptsListChanged) changed = this.promptsListChanged = true;
    if (subscription.resourcesListChanged === true && !this.resourcesListChanged) {
      changed = this.resourcesListChanged = true;
    }
    for (const uri of subscription.resourceSubscriptions ?? []) {
      if (!this.uris.has(uri)) {
        this.uris.add(uri);
        changed = true;
      }
    }
    return changed;
  }

  get empty(): boolean {
    return !this.toolsListChanged && !this.promptsListChanged && !this.resourcesListChanged && this.uris.size === 0;
  }

  filter(): SubscriptionFilter {
    return {
      ...(this.toolsListChanged ? { toolsListChanged: true } : {}),
      ...(this.promptsListChanged ? { promptsListChanged: true } : {}),
      ...(this.resourcesListChanged ? { resourcesListChanged: true } : {}),
      ...(this.uris.size > 0 ? { resourceSubscriptions: [...this.uris] } : {}),
    };
  }
}

/**
 * Keeps one connection's SDK client subscribed to the {@link WantedChanges}.
 *
 * 2026-07-28: one `subscriptions/listen` stream carrying the whole union; when the union grows a
 * new stream is opened and acknowledged before the old one is closed, so no notification falls in
 * a gap. A stream the server drops is re-opened after a short delay. 2025: list changes arrive
 * unsolicited; each new URI gets one `resources/subscribe`.
 *
 * Applications are serialized: a second `apply()` waits for the first.
 */
export class ConnectionSubscriber {
  readonly #client: Client;
  readonly #modern: boolean;
  #listen: McpSubscription | undefined;
  /** What the open stream (modern) or the subscribe calls (legacy) already cover. */
  #covered = new WantedChanges();
  #queue: Promise<void> = Promise.resolve();
  #closed = false;
  #relisten: NodeJS.Timeout | undefined;

  constructor(client: Client, modern: boolean) {
    this.#client = client;
    this.#modern = modern;
  }

  apply(wanted: WantedChanges): Promise<void> {
    const run = this.#queue.then(() => this.#apply(wanted));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#relisten) clearTimeout(this.#relisten);
    const listen = this.#listen;
    this.#listen = undefined;
    await listen?.close().catch(() => undefined);
  }

  async #apply(wanted: WantedChanges): Promise<void> {
    if (this.#closed || wanted.empty) return;
    if (!this.#modern) {
      for (const uri of wanted.uris) {
        if (this.#covered.uris.has(uri)) continue;
        await this.#client.subscribeResource({ uri });
        this.#covered.uris.add(uri);
      }
      return;
    }
    if (this.#listen !== undefined && covers(this.#covered, wanted)) return;
    const filter = wanted.filter();
    const next = await this.#client.listen(filter);
    const previous = this.#listen;
    this.#listen = next;
    this.#covered = new WantedChanges();
    this.#covered.merge(filter);
    void next.closed.then((cause) => {
      if (cause !== 'local' && this.#listen === next && !this.#closed) {
        this.#listen = undefined;
        this.#relisten = setTimeout(() => {
          this.apply(wanted).catch(() => undefined);
        }, RELISTEN_DELAY_MS);
        this.#relisten.unref();
      }
    });
    await previous?.close().catch(() => undefined);
  }
}

function covers(covered: WantedChanges, wanted: WantedChanges): boolean {
  if (wanted.toolsListChanged && !covered.toolsListChanged) return false;
  if (wanted.promptsListChanged && !covered.promptsListChanged) return false;
  if (wanted.resourcesListChanged && !covered.resourcesListChanged) return false;
  for (const uri of wanted.uris) if (!covered.uris.has(uri)) return false;
  return true;
}
