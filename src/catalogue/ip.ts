// Minimal IPv4 arithmetic: all the catalogue needs is subnets, offsets and membership.

import { excerpt } from './excerpt.js';

export interface Subnet {
  network: number; // as unsigned 32-bit
  prefix: number;
}

export function parseIpv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(s: string): Subnet | { error: string } {
  const [ip, len, extra] = s.split('/');
  const prefix = Number(len);
  const addr = ip === undefined ? undefined : parseIpv4(ip);
  if (addr === undefined || extra !== undefined || !/^\d{1,2}$/.test(len ?? '') || prefix > 32) {
    return { error: `${excerpt(s)} is not an IPv4 CIDR` };
  }
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  if ((addr & mask) >>> 0 !== addr) {
    return { error: `${excerpt(s)} has host bits set; did you mean ${formatIpv4((addr & mask) >>> 0)}/${prefix}?` };
  }
  return { network: addr, prefix };
}

export function subnetSize(s: Subnet): number {
  return 2 ** (32 - s.prefix);
}

/** Usable host address: inside the subnet, and not its network or broadcast address (for prefixes < 31). */
export function isHostInSubnet(s: Subnet, addr: number): boolean {
  const size = subnetSize(s);
  if (addr < s.network || addr >= s.network + size) return false;
  if (s.prefix >= 31) return true;
  return addr !== s.network && addr !== s.network + size - 1;
}

export function offsetAddress(s: Subnet, offset: number): number | undefined {
  const addr = s.network + offset;
  return isHostInSubnet(s, addr) ? addr : undefined;
}

export function formatCidr(s: Subnet): string {
  return `${formatIpv4(s.network)}/${s.prefix}`;
}
