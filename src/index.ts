// The library surface: everything the edgeimg command does, callable from a CI script.
export { planFleet } from './catalogue/index.js';
export { build, selectSites, parseShard, type BuildOptions, type BuildResult, type SiteResult, type MediaKind } from './build/build.js';
export { loadCatalogue } from './catalogue/load.js';
export { resolveCatalogue } from './catalogue/resolve.js';
export type { SitePlan, NodePlan, HardwarePlan } from './catalogue/plan.js';
export { CatalogueError, EnvironmentError, UsageError, VerifyError, formatDiagnostic, type Diagnostic } from './util/diagnostics.js';
export { renderNode, type RenderedNode } from './render/node.js';
export { readManifest, serializeManifest, type Manifest, type ManifestArtifact } from './manifest/manifest.js';
export { verify, staticChecks, type VerifyOptions, type VerifyReport, type CheckResult } from './verify/index.js';
export { bootChecks } from './verify/boot.js';
export { buildSeedIso, buildSeedImg, readIso9660, readFatImage, writeIso9660, writeFatImage } from './media/index.js';
export { loadOrCreateSiteSecrets, renderTalosconfig, checkTalosPki } from './secrets/index.js';
export { schematicId, installerImage, validateTalosDocuments } from './render/talos/index.js';
export { listImages, importImages, pullImages, imageNeeds, requireVerifiedAsset, readLock, resolveCacheDir, type ImageNeed, type BootAsset, type ListReport, type ImportReport, type PullReport } from './images/index.js';
