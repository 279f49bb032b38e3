/**
 * The resilience layer's public face: the per-upstream circuit breaker, the retry budget, retries
 * with backoff and `Retry-After`, and `executeWithResilience`, the pipeline step that composes them
 * with a balancer's choice of upstream.
 */
export { withRetry, isSafeToRetry, backoffDelay, type RetryOptions } from './retry.js';
export {
  CircuitBreaker,
  BreakerPass,
  breakerChannel,
  type BreakerState,
  type BreakerStateChange,
  type CircuitBreakerOptions,
} from './breaker.js';
export { RetryBudget, type RetryBudgetOptions } from './budget.js';
export { Outcome, outcomeOf, isTransient } from './classify.js';
export { monotonicClock, realSleep, type Clock, type Sleep } from './clock.js';
export {
  executeWithResilience,
  retryChannel,
  type ResilienceSettings,
  type ResilienceTarget,
  type RetryEvent,
  type TargetSelector,
} from './pipeline.js';
