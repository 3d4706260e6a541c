// The field laptop's server: iPXE scripts, netboot assets and per-MAC configs over HTTP.
export { startServer, type RunningServer, type ServeOptions } from './server.js';
export { loadServePlan, talosMetalArgs, type PlannedNode, type ServePlan, type Netboot, type NetbootProblem, type VerifiedAsset } from './plan.js';
export { parseDuration, parseListen, formatDuration, canonicalMac, colonMac, isLoopback, isWildcard, DEFAULT_LISTEN, DEFAULT_WINDOW_MS, type ListenAddress } from './options.js';
export { matchRoute, routeTable, type Route } from './routes.js';
export { bootScript, nodeScript, notBootingScript, kernelArgs } from './ipxe.js';
export { parseRange } from './file-response.js';
export type { ServeEvent, RequestEvent, ServerEvent, ServeSummary, NodeSummary } from './events.js';
