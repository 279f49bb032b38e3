import { createHash } from 'node:crypto';
import { UriTemplate, type Prompt, type Resource, type Tool } from '@modelcontextprotocol/client';
import type { ResourceTemplateType } from '@modelcontextprotocol/client';
import type { ProxyFactory } from '../proxy/index.js';
import { RpcCode, RpcError } from './rpc.js';

/** One upstream as the gateway sees it: its pipeline (cache, retries, pool) and its name. */
export interface GatewayUpstream {
  readonly name: string;
  readonly factory: ProxyFactory;
}

export type Namespacing = 'on_collision' | 'always';

export interface CatalogOptions {
  /** Prefix names with their upstream's name only where two upstreams collide, or always. */
  namespacing: Namespacing;
  /** Between the upstream name and the tool or prompt name. Default `__`. */
  separator: string;
}

/** The longest tool or prompt name many clients accept. */
export const MAX_NAME_LENGTH = 64;

export interface Route {
  upstream: GatewayUpstream;
  /** The name (or URI) as the upstream knows it. */
  name: string;
}

type Kind = 'tools' | 'prompts' | 'resources' | 'templates';

interface UpstreamList<T> {
  items: readonly T[] | undefined;
  /** Why this upstream's list is missing, when it failed. */
  error: string | undefined;
  loading: Promise<void> | undefined;
}

export interface NamedView<T> {
  items: T[];
  routes: Map<string, Route>;
}

/**
 * The aggregate of every upstream's tools, prompts, resources and templates. Each upstream's list
 * is fetched (all pages) once and kept until that upstream says it changed; an upstream that fails
 * is left out of the aggregate and remembered as unhealthy, never failing the whole list.
 */
export class Catalog {
  readonly #upstreams: readonly GatewayUpstream[];
  readonly #options: CatalogOptions;
  readonly #lists = new Map<Kind, Map<string, UpstreamList<unknown>>>();
  #tools: NamedView<Tool> | undefined;
  #prompts: NamedView<Prompt> | undefined;
  #resources: { items: Resource[]; byUri: Map<string, Route> } | undefined;
  #templates: { items: ResourceTemplateType[]; matchers: { template: UriTemplate; route: Route }[] } | undefined;

  constructor(upstreams: readonly GatewayUpstream[], options: CatalogOptions) {
    this.#upstreams = upstreams;
    this.#options = options;
    for (const kind of ['tools', 'prompts', 'resources', 'templates'] as const) {
      this.#lists.set(
        kind,
        new Map(upstreams.map((u) => [u.name, { items: undefined, error: undefined, loading: undefined }])),
      );
    }
  }

  get upstreams(): readonly GatewayUpstream[] {
    return this.#upstreams;
  }

  /** Forgets one upstream's list of a kind (it announced `list_changed`). */
  invalidate(upstream: string, kind: 'tools' | 'prompts' | 'resources'): void {
    const kinds: Kind[] = kind === 'resources' ? ['resources', 'templates'] : [kind];
    for (const k of kinds) {
      const entry = this.#lists.get(k)?.get(upstream);
      if (entry) entry.items = undefined;
    }
    if (kind === 'tools') this.#tools = undefined;
    if (kind === 'prompts') this.#prompts = undefined;
    if (kind === 'resources') {
      this.#resources = undefined;
      this.#templates = undefined;
    }
  }

  /** Upstreams whose last list fetch failed, with the reason. */
  failures(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const lists of this.#lists.values()) {
      for (const [name, entry] of lists) if (entry.error) out[name] ??= entry.error;
    }
    return out;
  }

  /** The aggregate tools list when it is loaded (no upstream has announced a change since), else undefined. */
  get loadedTools(): NamedView<Tool> | undefined {
    return this.#tools;
  }

  async tools(): Promise<NamedView<Tool>> {
    if (this.#tools) return this.#tools;
    const perUpstream = await this.#load<Tool>('tools', (u) => u.factory.listTools());
    this.#tools = this.#name(perUpstream, (tool, name) => ({ ...tool, name }));
    return this.#tools;
  }

  async prompts(): Promise<NamedView<Prompt>> {
    if (this.#prompts) return this.#prompts;
    const perUpstream = await this.#load<Prompt>('prompts', (u) => u.factory.listPrompts());
    this.#prompts = this.#name(perUpstream, (prompt, name) => ({ ...prompt, name }));
    return this.#prompts;
  }

  async resources(): Promise<{ items: Resource[]; byUri: Map<string, Route> }> {
    if (this.#resources) return this.#resources;
    const perUpstream = await this.#load<Resource>('resources', (u) => u.factory.listResources());
    const items: Resource[] = [];
    const byUri = new Map<string, Route>();
    for (const [upstream, list] of perUpstream) {
      for (const resource of list) {
        // URIs are global: the first upstream that lists one serves it.
        if (byUri.has(resource.uri)) continue;
        byUri.set(resource.uri, { upstream, name: resource.uri });
        items.push(resource);
      }
    }
    this.#resources = { items, byUri };
    return this.#resources;
  }

  async templates(): Promise<{ items: ResourceTemplateType[]; matchers: { template: UriTemplate; route: Route }[] }> {
    if (this.#templates) return this.#templates;
    const perUpstream = await this.#load<ResourceTemplateType>('templates', (u) => u.factory.listResourceTemplates());
    const items: ResourceTemplateType[] = [];
    const matchers: { template: UriTemplate; route: Route }[] = [];
    for (const [upstream, list] of perUpstream) {
      for (const template of list) {
        items.push(template);
        try {
          matchers.push({
            template: new UriTemplate(template.uriTemplate),
            route: { upstream, name: template.uriTemplate },
          });
        } catch {
          // An unparsable template is still listed; it just cannot route reads.
        }
      }
    }
    this.#templates = { items, matchers };
    return this.#templates;
  }

  async routePrompt(name: string): Promise<Route> {
    const route = (await this.prompts()).routes.get(name);
    if (!route) throw new RpcError(RpcCode.InvalidParams, `Unknown prompt: ${name}`);
    return route;
  }

  /** The upstream that serves a URI: one that lists it, else one whose template matches it. */
  async routeResource(uri: string): Promise<Route> {
    if (this.#upstreams.length === 1) return { upstream: this.#upstreams[0]!, name: uri };
    const listed = (await this.resources()).byUri.get(uri);
    if (listed) return listed;
    for (const { template, route } of (await this.templates()).matchers) {
      if (template.match(uri)) return { upstream: route.upstream, name: uri };
    }
    throw new RpcError(RpcCode.InvalidParams, `Resource not found: ${uri}`, { uri });
  }

  async #load<T>(
    kind: Kind,
    fetch: (upstream: GatewayUpstream) => Promise<T[]>,
  ): Promise<[GatewayUpstream, readonly T[]][]> {
    const lists = this.#lists.get(kind) as Map<string, UpstreamList<T>>;
    await Promise.all(
      this.#upstreams.map((upstream) => {
        const entry = lists.get(upstream.name)!;
        if (entry.items) return Promise.resolve();
        entry.loading ??= fetch(upstream)
          .then(
            (items) => {
              entry.items = items;
              entry.error = undefined;
            },
            (error: unknown) => {
              entry.items = undefined;
              entry.error = error instanceof Error ? error.message : String(error);
            },
          )
          .finally(() => {
            entry.loading = undefined;
          });
        return entry.loading;
      }),
    );
    return this.#upstreams.flatMap((upstream) => {
      const items = lists.get(upstream.name)!.items;
      return items ? [[upstream, items] as [GatewayUpstream, readonly T[]]] : [];
    });
  }

  #name<T extends { name: string }>(
    perUpstream: [GatewayUpstream, readonly T[]][],
    rename: (item: T, name: string) => T,
  ): NamedView<T> {
    const counts = new Map<string, number>();
    for (const [, list] of perUpstream)
      for (const item of list) counts.set(item.name, (counts.get(item.name) ?? 0) + 1);
    const items: T[] = [];
    const routes = new Map<string, Route>();
    const single = this.#upstreams.length === 1;
    for (const [upstream, list] of perUpstream) {
      for (const item of list) {
        const prefixed = !single && (this.#options.namespacing === 'always' || (counts.get(item.name) ?? 0) > 1);
        const exposed = prefixed ? namespaced(upstream.name, item.name, this.#options.separator) : item.name;
        if (routes.has(exposed)) continue;
        routes.set(exposed, { upstream, name: item.name });
        items.push(exposed === item.name ? item : rename(item, exposed));
      }
    }
    return { items, routes };
  }
}

/** `upstream__name`, kept within 64 characters by a short hash where it would be longer. */
export function namespaced(upstream: string, name: string, separator: string): string {
  const full = `${upstream}${separator}${name}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 8);
  return `${full.slice(0, MAX_NAME_LENGTH - hash.length - 1)}_${hash}`;
}
