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

/**
 * How long the aggregate goes without an upstream whose list failed before that list is asked for
 * again, in ms. The retry runs in the background (callers keep the aggregate they have), except
 * for a caller who names something the aggregate lacks: that one waits for it.
 */
const FAILED_LIST_RETRY_MS = 1000;

const FETCHERS: { [K in Kind]: (upstream: GatewayUpstream) => Promise<unknown[]> } = {
  tools: (u) => u.factory.listTools(),
  prompts: (u) => u.factory.listPrompts(),
  resources: (u) => u.factory.listResources(),
  templates: (u) => u.factory.listResourceTemplates(),
};

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
  /** Kinds whose aggregate lacks a failed upstream's list, with when that list was last asked for. */
  readonly #incomplete = new Map<Kind, number>();
  readonly #retrying = new Map<Kind, Promise<void>>();

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
    if (this.#incomplete.size > 0) void this.#retryFailed('tools');
    return this.#tools;
  }

  async tools(): Promise<NamedView<Tool>> {
    if (this.#tools) {
      void this.#retryFailed('tools');
      return this.#tools;
    }
    const perUpstream = await this.#load<Tool>('tools');
    this.#tools = this.#name(perUpstream, (tool, name) => ({ ...tool, name }));
    return this.#tools;
  }

  /**
   * For a caller who named something the aggregate of `kind` lacks: when an upstream's list of it
   * failed, asks that upstream again (unless it was asked less than a second ago) and resolves
   * true once the aggregate was rebuilt, so the caller can look again.
   */
  async retryMissing(kind: Kind): Promise<boolean> {
    const retry = this.#retryFailed(kind);
    if (retry === undefined) return false;
    await retry;
    return true;
  }

  /** Why the aggregate of `kind` may lack something: the upstreams whose list failed, for error messages. */
  missingNote(kind: Kind): string {
    if (!this.#incomplete.has(kind)) return '';
    const failed = [...(this.#lists.get(kind) ?? [])].filter(([, entry]) => entry.error !== undefined);
    return failed.length === 0
      ? ''
      : ` (not listed: ${failed.map(([name, entry]) => `upstream '${name}' failed: ${entry.error}`).join('; ')})`;
  }

  async prompts(): Promise<NamedView<Prompt>> {
    if (this.#prompts) {
      void this.#retryFailed('prompts');
      return this.#prompts;
    }
    const perUpstream = await this.#load<Prompt>('prompts');
    this.#prompts = this.#name(perUpstream, (prompt, name) => ({ ...prompt, name }));
    return this.#prompts;
  }

  async resources(): Promise<{ items: Resource[]; byUri: Map<string, Route> }> {
    if (this.#resources) {
      void this.#retryFailed('resources');
      return this.#resources;
    }
    const perUpstream = await this.#load<Resource>('resources');
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
    if (this.#templates) {
      void this.#retryFailed('templates');
      return this.#templates;
    }
    const perUpstream = await this.#load<ResourceTemplateType>('templates');
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
    let route = (await this.prompts()).routes.get(name);
    if (!route && (await this.retryMissing('prompts'))) route = (await this.prompts()).routes.get(name);
    if (!route) throw new RpcError(RpcCode.InvalidParams, `Unknown prompt: ${name}${this.missingNote('prompts')}`);
    return route;
  }

  /** The upstream that serves a URI: one that lists it, else one whose template matches it. */
  async routeResource(uri: string): Promise<Route> {
    if (this.#upstreams.length === 1) return { upstream: this.#upstreams[0]!, name: uri };
    for (let again = true; ; again = false) {
      const listed = (await this.resources()).byUri.get(uri);
      if (listed) return listed;
      for (const { template, route } of (await this.templates()).matchers) {
        if (template.match(uri)) return { upstream: route.upstream, name: uri };
      }
      if (!again) break;
      const [resources, templates] = await Promise.all([
        this.retryMissing('resources'),
        this.retryMissing('templates'),
      ]);
      if (!resources && !templates) break;
    }
    const note = this.missingNote('resources') || this.missingNote('templates');
    throw new RpcError(RpcCode.InvalidParams, `Resource not found: ${uri}${note}`, { uri });
  }

  /**
   * Asks again, in the background, the upstreams whose list of `kind` failed, at most once a second
   * and one retry at a time; the aggregate is rebuilt from the lists afterwards. Undefined when
   * there is nothing to retry yet.
   */
  #retryFailed(kind: Kind): Promise<void> | undefined {
    const failedAt = this.#incomplete.get(kind);
    if (failedAt === undefined) return undefined;
    const running = this.#retrying.get(kind);
    if (running !== undefined) return running;
    if (performance.now() - failedAt < FAILED_LIST_RETRY_MS) return undefined;
    this.#incomplete.set(kind, performance.now());
    const lists = this.#lists.get(kind)!;
    const failed = [...lists.values()].filter((entry) => entry.error !== undefined);
    const retry = this.#load(kind)
      .then(() => {
        // Still failing: keep the aggregate (a rebuild would ask the failing upstream again at once).
        if (!failed.some((entry) => entry.items !== undefined)) return;
        // Rebuilt from the lists on next use: those that loaded fine are kept, not fetched again.
        if (kind === 'tools') this.#tools = undefined;
        if (kind === 'prompts') this.#prompts = undefined;
        if (kind === 'resources') this.#resources = undefined;
        if (kind === 'templates') this.#templates = undefined;
      })
      .finally(() => this.#retrying.delete(kind));
    this.#retrying.set(kind, retry);
    return retry;
  }

  async #load<T>(kind: Kind): Promise<[GatewayUpstream, readonly T[]][]> {
    const fetch = FETCHERS[kind] as (upstream: GatewayUpstream) => Promise<T[]>;
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
    const failed = this.#upstreams.some((upstream) => lists.get(upstream.name)!.error !== undefined);
    if (!failed) this.#incomplete.delete(kind);
    else if (!this.#incomplete.has(kind)) this.#incomplete.set(kind, performance.now());
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
