// Public surface of the media module: NoCloud seeds, and the ISO9660/FAT writers and
// readers underneath them (readers are used by `verify` and the tests), and the sparse-file
// writer the build uses for the mostly-zero FAT32 seed.
export { type MediaFile, validateName, MAX_NAME_LENGTH } from './common.js';
export { writeIso9660, ISO_SECTOR, type IsoWriteOptions } from './iso9660/writer.js';
export { readIso9660, IsoFormatError, type IsoReadResult } from './iso9660/reader.js';
export { writeFatImage, FAT_SECTOR, type FatWriteOptions } from './fat/writer.js';
export { readFatImage, FatFormatError, type FatReadResult } from './fat/reader.js';
export { writeSparseFileSync, nonZeroExtents, SPARSE_BLOCK, type SparseWriteOptions } from './sparse.js';
export {
  type SeedFiles,
  SEED_ISO_LABEL,
  SEED_IMG_LABEL,
  seedFileList,
  buildSeedIso,
  buildSeedImg,
  epochFromDigest,
  resolveEpoch,
  DIGEST_EPOCH_BASE,
  DIGEST_EPOCH_SPAN,
  MAX_SEED_EPOCH,
} from './seed.js';
