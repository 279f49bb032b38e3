import diagnosticsChannel from 'node:diagnostics_channel';

/** The next message on a diagnostics channel that `accept` takes; unsubscribes once it arrives. */
export function nextEvent<T>(name: string, accept: (message: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (message: unknown): void => {
      if (!accept(message as T)) return;
      diagnosticsChannel.unsubscribe(name, listener);
      resolve(message as T);
    };
    diagnosticsChannel.subscribe(name, listener);
  });
}
