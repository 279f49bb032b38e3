export {
  createProxyFactory,
  ProxyFactory,
  ToolProxy,
  ResourceProxy,
  PromptProxy,
  type ExecuteOptions,
  type ProxyFactoryOptions,
  type WarmCall,
  type WarmReport,
  type ConnectionReport,
} from './factory.js';
export {
  ProxyManager,
  GroupRouter,
  type GroupFactoryOptions,
  type ManagerEventMap,
  type ProxyManagerOptions,
  type UpstreamHealth,
} from './manager.js';
