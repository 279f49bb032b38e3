/** Order statistics: shipped with the package (`mcp-relay bench`), in src/bench/stats.ts. */
export * from '../../src/bench/stats.js';
