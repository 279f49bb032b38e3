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
