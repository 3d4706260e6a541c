// Minimal DER encoder and X.509 v3 certificate builder for the handful of certificates this
// project issues (self-signed CAs and one client certificate). Signing uses node:crypto
// directly. See docs/decisions-pki.md for why this exists instead of @peculiar/x509.
//
// Only the constructs we need are implemented; everything is DER (definite lengths,
// minimal integers, named-bit-list BIT STRINGs with trailing zero bits removed).

import { createHash, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';

// ---------------------------------------------------------------------------------------------
// Primitive TLV encoding

function encodeLength(len: number): Buffer {
  if (len < 0x80) return Buffer.from([len]);
  const bytes: number[] = [];
  let n = len;
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...contents: Buffer[]): Buffer {
  const body = Buffer.concat(contents);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
export const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
export const bool = (v: boolean): Buffer => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
export const octetString = (b: Buffer): Buffer => tlv(0x04, b);
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
/** Context-specific, constructed, explicit tag [n]. */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner);
/** Context-specific, primitive, implicit tag [n] over raw content octets. */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

/** INTEGER from an unsigned big-endian magnitude (minimal encoding, always non-negative). */
export function uint(magnitude: Buffer): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  let b = magnitude.subarray(i);
  if (b.length === 0) b = Buffer.from([0]);
  if ((b[0] ?? 0) & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return tlv(0x02, b);
}

export function smallInt(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new RangeError(`smallInt out of range: ${n}`);
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  return uint(Buffer.from(bytes));
}

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => {
    if (!/^\d+$/.test(p)) throw new Error(`bad OID ${dotted}`);
    return Number(p);
  });
  const [a, b, ...rest] = parts;
  if (a === undefined || b === undefined) throw new Error(`bad OID ${dotted}`);
  const out: number[] = [a * 40 + b];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    let v = Math.floor(arc / 128);
    while (v > 0) {
      chunk.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

/** BIT STRING wrapping whole octets (used for keys and signatures). */
export const bitString = (b: Buffer): Buffer => tlv(0x03, Buffer.from([0]), b);

/** BIT STRING for a NamedBitList (e.g. KeyUsage): bit 0 is the MSB of the first octet. */
export function namedBits(bits: readonly number[]): Buffer {
  if (bits.length === 0) return tlv(0x03, Buffer.from([0]));
  const max = Math.max(...bits);
  const nbytes = Math.floor(max / 8) + 1;
  const buf = Buffer.alloc(nbytes);
  for (const bit of bits) buf[Math.floor(bit / 8)]! |= 0x80 >> (bit % 8);
  const unused = 7 - (max % 8); // DER: trailing zero bits are removed
  return tlv(0x03, Buffer.from([unused]), buf);
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/** DirectoryString: PrintableString when the value allows it (as Go does), else UTF8String. */
export function directoryString(s: string): Buffer {
  return PRINTABLE.test(s) ? tlv(0x13, Buffer.from(s, 'ascii')) : tlv(0x0c, Buffer.from(s, 'utf8'));
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. Second precision. */
export function time(d: Date): Buffer {
  const y = d.getUTCFullYear();
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const rest = `${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${p2(y % 100)}${rest}`, 'ascii'));
  return tlv(0x18, Buffer.from(`${String(y).padStart(4, '0')}${rest}`, 'ascii'));
}

// ---------------------------------------------------------------------------------------------
// X.509 pieces

export const OID = {
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  ed25519: '1.3.101.112',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  authorityKeyIdentifier: '2.5.29.35',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const;

export const KeyUsageBit = {
  digitalSignature: 0,
  keyEncipherment: 2,
  keyCertSign: 5,
  cRLSign: 6,
} as const;

export interface DistinguishedName {
  O?: string[];
  CN?: string;
}

/** Name ::= SEQUENCE OF RDN; one attribute per RDN, O before CN (the order Go emits). */
export function name(dn: DistinguishedName): Buffer {
  const rdns: Buffer[] = [];
  for (const o of dn.O ?? []) rdns.push(set(seq(oid(OID.organization), directoryString(o))));
  if (dn.CN !== undefined) rdns.push(set(seq(oid(OID.commonName), directoryString(dn.CN))));
  return seq(...rdns);
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octetString(value)) : seq(oid(id), octetString(value));
}

/** Parse the top-level SEQUENCE of a DER SubjectPublicKeyInfo and return the subjectPublicKey bits. */
function spkiKeyBits(spki: Buffer): Buffer {
  // SubjectPublicKeyInfo ::= SEQUENCE { algorithm AlgorithmIdentifier, subjectPublicKey BIT STRING }
  const readHeader = (buf: Buffer, off: number): { tag: number; len: number; hdr: number } => {
    const tag = buf[off]!;
    const first = buf[off + 1]!;
    if (first < 0x80) return { tag, len: first, hdr: 2 };
    const n = first & 0x7f;
    let len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]!;
    return { tag, len, hdr: 2 + n };
  };
  const outer = readHeader(spki, 0);
  let off = outer.hdr;
  const alg = readHeader(spki, off);
  off += alg.hdr + alg.len;
  const bits = readHeader(spki, off);
  if (bits.tag !== 0x03) throw new Error('unexpected SubjectPublicKeyInfo layout');
  return spki.subarray(off + bits.hdr + 1, off + bits.hdr + bits.len); // skip unused-bits octet
}

/** RFC 5280 4.2.1.2 method (1): SHA-1 over the subjectPublicKey BIT STRING value. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(spkiKeyBits(spki)).digest();
}

/** Positive 16-byte serial with ~126 bits of randomness; the fixed 0x40 bit keeps DER length constant. */
export function randomSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x3f) | 0x40;
  return b;
}

function signatureAlgorithm(signingKey: KeyObject): { algId: Buffer; sign: (tbs: Buffer) => Buffer } {
  switch (signingKey.asymmetricKeyType) {
    case 'ed25519':
      return { algId: seq(oid(OID.ed25519)), sign: (tbs) => cryptoSign(null, tbs, signingKey) };
    case 'ec':
      return {
        algId: seq(oid(OID.ecdsaWithSha256)),
        sign: (tbs) => cryptoSign('sha256', tbs, { key: signingKey, dsaEncoding: 'der' }),
      };
    case 'rsa':
      return {
        algId: seq(oid(OID.sha256WithRsa), nullValue()),
        sign: (tbs) => cryptoSign('sha256', tbs, signingKey),
      };
    default:
      throw new Error(`unsupported signing key type ${String(signingKey.asymmetricKeyType)}`);
  }
}

export interface CertificateParams {
  subject: DistinguishedName;
  issuer: DistinguishedName;
  notBefore: Date;
  notAfter: Date;
  publicKey: KeyObject; // subject's public key
  signingKey: KeyObject; // issuer's private key
  issuerPublicKey: KeyObject; // for the authority key identifier
  isCA: boolean;
  keyUsage: number[];
  extKeyUsage?: string[];
  serial?: Buffer;
  /** The issuer Name as the issuing CA encodes its subject (DER); overrides `issuer`. */
  issuerRaw?: Buffer;
  /** The issuing CA's subjectKeyIdentifier, used as authorityKeyIdentifier (default: derived from issuerPublicKey). */
  authorityKeyId?: Buffer;
}

/** Build and sign an X.509 v3 certificate; returns DER. */
export function buildCertificate(p: CertificateParams): Buffer {
  const { algId, sign } = signatureAlgorithm(p.signingKey);
  const spki = p.publicKey.export({ type: 'spki', format: 'der' });
  const ski = keyIdentifier(p.publicKey);
  const exts: Buffer[] = [extension(OID.keyUsage, true, namedBits(p.keyUsage))];
  if (p.extKeyUsage && p.extKeyUsage.length > 0) {
    exts.push(extension(OID.extKeyUsage, false, seq(...p.extKeyUsage.map(oid))));
  }
  // basicConstraints: critical for CAs (RFC 5280 4.2.1.9); cA defaults to FALSE so an
  // end-entity carries an empty SEQUENCE.
  exts.push(extension(OID.basicConstraints, true, p.isCA ? seq(bool(true)) : seq()));
  exts.push(extension(OID.subjectKeyIdentifier, false, octetString(ski)));
  const selfSigned = p.publicKey.export({ type: 'spki', format: 'der' }).equals(p.issuerPublicKey.export({ type: 'spki', format: 'der' }));
  if (!selfSigned) {
    exts.push(extension(OID.authorityKeyIdentifier, false, seq(implicitPrimitive(0, p.authorityKeyId ?? keyIdentifier(p.issuerPublicKey)))));
  }
  const tbs = seq(
    explicit(0, smallInt(2)), // v3
    uint(p.serial ?? randomSerial()),
    algId,
    p.issuerRaw ?? name(p.issuer),
    seq(time(p.notBefore), time(p.notAfter)),
    name(p.subject),
    spki,
    explicit(3, seq(...exts)),
  );
  return seq(tbs, algId, bitString(sign(tbs)));
}

// ---------------------------------------------------------------------------------------------
// Minimal DER reading: what issuing a certificate under an existing CA needs from that CA.

interface Tlv {
  tag: number;
  start: number; // offset of the tag
  body: number; // offset of the contents
  end: number; // offset after the contents
}

function readTlv(buf: Buffer, off: number): Tlv {
  if (off + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[off]!;
  const first = buf[off + 1]!;
  let len = first;
  let hdr = 2;
  if (first >= 0x80) {
    const n = first & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[off + 2 + i]!;
    hdr = 2 + n;
  }
  const end = off + hdr + len;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, start: off, body: off + hdr, end };
}

function children(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let off = t.body; off < t.end; ) {
    const c = readTlv(buf, off);
    out.push(c);
    off = c.end;
  }
  return out;
}

/** From a certificate (DER): its subject Name exactly as encoded, and its subjectKeyIdentifier if it has one. */
export function certificateSubjectInfo(certDer: Buffer): { subjectRaw: Buffer; subjectKeyId?: Buffer } {
  const cert = readTlv(certDer, 0);
  const tbs = children(certDer, cert)[0];
  if (!tbs) throw new Error('not a certificate');
  const f = children(certDer, tbs);
  const i = f[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  const subject = f[i + 4];
  if (!subject) throw new Error('not a certificate');
  const subjectRaw = certDer.subarray(subject.start, subject.end);
  const extsWrap = f.find((t) => t.tag === 0xa3);
  let subjectKeyId: Buffer | undefined;
  if (extsWrap) {
    const exts = children(certDer, extsWrap)[0];
    for (const ext of exts ? children(certDer, exts) : []) {
      const parts = children(certDer, ext);
      const id = parts[0];
      if (!id || !certDer.subarray(id.start, id.end).equals(oid(OID.subjectKeyIdentifier))) continue;
      const value = parts[parts.length - 1]!; // OCTET STRING wrapping OCTET STRING keyIdentifier
      const inner = readTlv(certDer, value.body);
      subjectKeyId = Buffer.from(certDer.subarray(inner.body, inner.end));
    }
  }
  return { subjectRaw: Buffer.from(subjectRaw), ...(subjectKeyId ? { subjectKeyId } : {}) };
}
