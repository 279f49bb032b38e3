import * as z from 'zod';

const expectedPort = 'expected a port number from 0 to 65535 (0 picks a free port)';

/**
 * The `server:` section: where and how the gateway listens. Keys as in the file (snake_case).
 * Command-line flags override it; it overrides the defaults.
 */
export const serverSectionSchema = z.strictObject(
  {
    host: z
      .string({ error: 'expected a host name or IP address' })
      .min(1, { error: 'expected a host name or IP address' })
      .optional()
      .meta({
        description: 'Address to bind. Default 127.0.0.1: only this machine can connect unless you say otherwise.',
      }),
    port: z
      .int({ error: expectedPort })
      .min(0, { error: expectedPort })
      .max(65535, { error: expectedPort })
      .optional()
      .meta({ description: 'TCP port. Default 8080; 0 picks a free port (the address is printed on start).' }),
    max_body_bytes: z
      .int({ error: 'expected an integer of at least 1024' })
      .min(1024, { error: 'expected an integer of at least 1024' })
      .optional()
      .meta({
        description:
          'Largest request body accepted, in bytes; larger ones get a JSON-RPC error. Default 4194304 (4 MiB).',
        unit: 'bytes',
      }),
    allowed_origins: z
      .array(z.url({ error: 'expected an origin such as https://app.example.com' }), {
        error: 'expected a list of origins',
      })
      .optional()
      .meta({ description: 'Browser origins allowed besides loopback ones (DNS-rebinding protection). Default none.' }),
    namespacing: z.enum(['on_collision', 'always'], { error: "expected 'on_collision' or 'always'" }).optional().meta({
      description:
        "Prefix tool and prompt names with their upstream's name (upstream__tool) only where two upstreams collide, or always. Default on_collision.",
    }),
    page_size: z
      .int({ error: 'expected an integer from 1 to 10000' })
      .min(1, { error: 'expected an integer from 1 to 10000' })
      .max(10000, { error: 'expected an integer from 1 to 10000' })
      .optional()
      .meta({ description: 'Items per page of the aggregated lists the gateway answers. Default 500.' }),
  },
  { error: 'expected a map of server settings (host, port, ...)' },
);

export type ServerSection = z.output<typeof serverSectionSchema>;

/** The `server:` section resolved, with the defaults applied. */
export interface ResolvedServerConfig {
  readonly host: string;
  readonly port: number;
  readonly maxBodyBytes: number;
  readonly allowedOrigins: readonly string[];
  readonly namespacing: 'on_collision' | 'always';
  readonly pageSize: number;
}

export const SERVER_DEFAULTS: ResolvedServerConfig = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  maxBodyBytes: 4 * 1024 * 1024,
  allowedOrigins: Object.freeze([]),
  namespacing: 'on_collision',
  pageSize: 500,
});

export function resolveServerSection(section: ServerSection | undefined): ResolvedServerConfig {
  return Object.freeze({
    host: section?.host ?? SERVER_DEFAULTS.host,
    port: section?.port ?? SERVER_DEFAULTS.port,
    maxBodyBytes: section?.max_body_bytes ?? SERVER_DEFAULTS.maxBodyBytes,
    allowedOrigins: Object.freeze([...(section?.allowed_origins ?? [])]),
    namespacing: section?.namespacing ?? SERVER_DEFAULTS.namespacing,
    pageSize: section?.page_size ?? SERVER_DEFAULTS.pageSize,
  });
}
