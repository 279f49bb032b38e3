/**
 * The dashboard layer's public face: the live page, its server-sent-events feed, and the
 * gateway's observability routes (`/`, `/dashboard/events`, `/alerts`, `/metrics`).
 */
export { DASHBOARD_HTML } from './page.js';
export { DashboardFeed, type DashboardFeedOptions, type DashboardSnapshot } from './feed.js';
export { Observability, secretsOf, type ObservabilityOptions } from './observability.js';
