// The reference NoCloud client: real cloud-init (Debian 12) reading a node's seed under QEMU.
export { runCloudInitClient, clientKernelArgs, type CloudInitClientOptions, type CloudInitClientResult } from './client.js';
export { checkCloudInitReport, summariseWarnings, type CheckOutcome, type CloudInitExpectation, type SeedMedium, type UserDataKind, type WarningSummary } from './checks.js';
export { locateCloudInitImage, requireCloudInitImage, cloudInitImageDir, cloudInitImageMissingMessage, type CloudInitImage, type CloudInitImageManifest } from './image.js';
export { asClientReport, type CloudInitClientReport, type ClientInterface, type ClientRoute, type CloudInitStatus } from './report.js';
export { cloudInitTargets, type CloudInitTarget } from './targets.js';
export { parseTranscript, renderTranscript, crc32Hex, TRANSCRIPT_PREFIX, type TranscriptResult } from './transcript.js';
