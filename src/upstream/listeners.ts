import type { JSONRPCNotification } from '@modelcontextprotocol/client';
import type { NotificationListener } from './types.js';

/** The listeners of an upstream's notifications: each hears every one, and one throwing harms no other. */
export class NotificationListeners {
  readonly #listeners = new Set<NotificationListener>();

  add(listener: NotificationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  emit(notification: JSONRPCNotification): void {
    for (const listener of this.#listeners) {
      try {
        listener(notification);
      } catch {
        // A listener's failure is its own; the others still hear the notification.
      }
    }
  }
}
