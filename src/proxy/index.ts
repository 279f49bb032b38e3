export {
  createProxyFactory,
  ProxyFactory,
  ToolProxy,
  ResourceProxy,
  PromptProxy,
  type ExecuteOptions,
  type ConnectionReport,
} from './factory.js';
