// A gzip writer that only emits stored (uncompressed) deflate blocks. The k0s join token is
// base64(gzip(kubeconfig)); zlib's compressed output depends on the zlib build (Node bundles
// Chromium's fork, whose output differs between releases), which would make the same inputs
// give different user-data bytes on different CI runners. Stored blocks are fully defined by
// RFC 1951/1952, so the bytes depend on the input alone. The token grows by a few hundred
// bytes, which nothing cares about.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

const MAX_STORED = 0xffff;

/** gzip member with mtime 0, no name, OS "unknown", and stored deflate blocks. */
export function gzipStored(data: Uint8Array): Uint8Array {
  const blocks = Math.max(1, Math.ceil(data.length / MAX_STORED));
  const out = new Uint8Array(10 + blocks * 5 + data.length + 8);
  const view = new DataView(out.buffer);
  out.set([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff]);
  let pos = 10;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * MAX_STORED, (i + 1) * MAX_STORED);
    out[pos] = i === blocks - 1 ? 0x01 : 0x00; // BFINAL bit, BTYPE 00 (stored), padding to the byte
    view.setUint16(pos + 1, chunk.length, true);
    view.setUint16(pos + 3, ~chunk.length & 0xffff, true);
    out.set(chunk, pos + 5);
    pos += 5 + chunk.length;
  }
  view.setUint32(pos, crc32(data), true);
  view.setUint32(pos + 4, data.length >>> 0, true);
  return out;
}
