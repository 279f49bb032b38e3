export { withRetry, isSafeToRetry, type RetryOptions } from './retry.js';
