/**
 * The balance layer's public face: strategies (peak-EWMA power of two choices, round robin, least
 * outstanding, weighted, failover), the per-upstream state they read, health (active probes and
 * passive outlier ejection) and the `Balancer` that picks an upstream for each call of a group.
 */
export { Balancer, type BalancerOptions } from './balancer.js';
export {
  HealthTracker,
  healthChannel,
  type BalanceEventMap,
  type EjectionOptions,
  type EjectionScope,
  type ProbeOptions,
  type Prober,
} from './health.js';
export { Member, type Gate, type MemberOptions, type ProbeResult, type Tags } from './member.js';
export { PeakEwma, UNMEASURED_PENALTY } from './peak-ewma.js';
export {
  STRATEGY_NAMES,
  createStrategy,
  peakEwmaCost,
  type Strategy,
  type StrategyContext,
  type StrategyMember,
  type StrategyName,
} from './strategies.js';
