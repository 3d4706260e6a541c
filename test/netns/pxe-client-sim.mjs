// A minimal PXE client, for the one path no QEMU guest can take: a BIOS whose PXE ROM is NOT
// iPXE (Intel Boot Agent and the like). QEMU's NIC option ROMs are iPXE, and iPXE is tagged
// `ipxe` by the proxy, so it never asks for undionly.kpxe. This script does what a PXE 2.1 ROM
// does on the wire and reports what it got, as one JSON line per case on stdout:
//
//   1. DHCPDISCOVER (broadcast, vendor class PXEClient:Arch:<arch>, option 93, no user class
//      unless the case says iPXE); collects the store's OFFER and the proxy's reply.
//   2. If the proxy reply carries no boot file: DHCPREQUEST to <proxy>:4011 (boot-server
//      discovery, with the menu item from option 43.9 for BIOS) and reads the boot file.
//   3. TFTP read of that file from the proxy (RFC 1350, 512-byte blocks), sha256 of the bytes.
//
//   node pxe-client-sim.mjs '<json: {mac, address, cases: [{name, arch, ipxe?}]}>'
//
// Run by test/netns/harness.ts inside its own network namespace on the scenario bridge.
// Plain JavaScript (no tsx) so it can be started with `ip netns exec <ns> node ...`.
import { createSocket } from 'node:dgram';
import { createHash, randomBytes } from 'node:crypto';

const spec = JSON.parse(process.argv[2] ?? '{}');
const mac = Buffer.from(String(spec.mac).split(':').map((h) => parseInt(h, 16)));
const myAddress = String(spec.address);
const hardDeadline = setTimeout(() => {
  console.log(JSON.stringify({ fatal: 'pxe-client-sim: overall timeout (60 s)' }));
  process.exit(2);
}, 60_000);

function ipBytes(ip) {
  return Buffer.from(ip.split('.').map(Number));
}
function ipString(buf, off) {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}
function cstr(buf) {
  const z = buf.indexOf(0);
  return buf.subarray(0, z < 0 ? buf.length : z).toString('latin1');
}

function dhcpPacket({ type, xid, ciaddr = '0.0.0.0', arch, ipxe, bootItem }) {
  const head = Buffer.alloc(240);
  head[0] = 1; // BOOTREQUEST
  head[1] = 1; // ethernet
  head[2] = 6;
  head.writeUInt32BE(xid, 4);
  head.writeUInt16BE(ciaddr === '0.0.0.0' ? 0x8000 : 0, 10); // broadcast flag while unconfigured
  ipBytes(ciaddr).copy(head, 12);
  mac.copy(head, 28);
  Buffer.from([99, 130, 83, 99]).copy(head, 236);
  const opts = [];
  const opt = (code, data) => opts.push(Buffer.from([code, data.length]), data);
  opt(53, Buffer.from([type]));
  opt(55, Buffer.from([1, 3, 43, 60, 66, 67, 97, 128, 129, 130, 131, 132, 133, 134, 135]));
  opt(60, Buffer.from(`PXEClient:Arch:${String(arch).padStart(5, '0')}:UNDI:002001`, 'latin1'));
  opt(93, Buffer.from([arch >> 8, arch & 0xff]));
  opt(94, Buffer.from([1, 2, 1]));
  opt(97, Buffer.concat([Buffer.from([0]), Buffer.from(mac.toString('hex').padEnd(32, '0'), 'hex')]));
  if (ipxe) opt(77, Buffer.from('iPXE', 'latin1'));
  if (bootItem !== undefined) {
    // option 43 sub-option 71: boot item type (2 bytes) + layer (2 bytes)
    opt(43, Buffer.from([71, 4, bootItem >> 8, bootItem & 0xff, 0, 0, 255]));
  }
  opts.push(Buffer.from([255]));
  return Buffer.concat([head, ...opts]);
}

function parseDhcp(buf) {
  if (buf.length < 240 || buf.readUInt32BE(236) !== 0x63825363) return undefined;
  const out = {
    op: buf[0],
    xid: buf.readUInt32BE(4),
    yiaddr: ipString(buf, 16),
    siaddr: ipString(buf, 20),
    sname: cstr(buf.subarray(44, 108)),
    file: cstr(buf.subarray(108, 236)),
    options: {},
  };
  for (let i = 240; i < buf.length; ) {
    const code = buf[i];
    if (code === 255) break;
    if (code === 0) {
      i += 1;
      continue;
    }
    const len = buf[i + 1];
    out.options[code] = buf.subarray(i + 2, i + 2 + len);
    i += 2 + len;
  }
  const o = out.options;
  out.type = o[53]?.[0];
  out.serverId = o[54] ? ipString(o[54], 0) : undefined;
  out.vendorClass = o[60]?.toString('latin1');
  if (o[67]) out.file = cstr(o[67]);
  if (o[43]) {
    const sub = {};
    for (let i = 0; i < o[43].length; ) {
      const c = o[43][i];
      if (c === 255) break;
      if (c === 0) {
        i += 1;
        continue;
      }
      const l = o[43][i + 1];
      sub[c] = o[43].subarray(i + 2, i + 2 + l);
      i += 2 + l;
    }
    out.pxe = {
      discoveryControl: sub[6]?.[0],
      menu: [],
    };
    if (sub[9]) {
      for (let i = 0; i + 3 <= sub[9].length; ) {
        const type = sub[9].readUInt16BE(i);
        const l = sub[9][i + 2];
        out.pxe.menu.push({ type, text: sub[9].subarray(i + 3, i + 3 + l).toString('latin1') });
        i += 3 + l;
      }
    }
  }
  delete out.options;
  return out;
}

function exchange(sock, packet, dest, port, waitMs, wanted) {
  return new Promise((resolve) => {
    const got = [];
    const onMsg = (msg, rinfo) => {
      const p = parseDhcp(msg);
      if (!p || p.op !== 2 || p.xid !== packet.readUInt32BE(4)) return;
      got.push({ ...p, from: rinfo.address });
      if (wanted(got)) finish();
    };
    const finish = () => {
      clearTimeout(t);
      sock.off('message', onMsg);
      resolve(got);
    };
    const t = setTimeout(finish, waitMs);
    sock.on('message', onMsg);
    sock.send(packet, port, dest);
  });
}

function tftpGet(server, file) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const chunks = [];
    let expect = 1;
    let bytes = 0;
    const fail = (error) => {
      clearTimeout(t);
      s.close();
      resolve({ file, error });
    };
    const t = setTimeout(() => fail('TFTP timeout (20 s)'), 20_000);
    s.on('message', (msg, rinfo) => {
      const op = msg.readUInt16BE(0);
      if (op === 5) return fail(`TFTP error ${msg.readUInt16BE(2)}: ${cstr(msg.subarray(4))}`);
      if (op !== 3) return;
      const block = msg.readUInt16BE(2);
      const ack = Buffer.from([0, 4, block >> 8, block & 0xff]);
      s.send(ack, rinfo.port, rinfo.address);
      if (block !== (expect & 0xffff)) return; // duplicate
      expect += 1;
      const data = msg.subarray(4);
      chunks.push(data);
      bytes += data.length;
      if (data.length < 512) {
        clearTimeout(t);
        s.close();
        resolve({ file, bytes, sha256: createHash('sha256').update(Buffer.concat(chunks)).digest('hex') });
      }
    });
    s.send(Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${file}\0octet\0`, 'latin1')]), 69, server);
  });
}

const sock = createSocket({ type: 'udp4', reuseAddr: true });
await new Promise((r) => sock.bind(68, '0.0.0.0', r));
sock.setBroadcast(true);

for (const c of spec.cases ?? []) {
  const arch = Number(c.arch);
  const result = { name: c.name, arch, ipxe: Boolean(c.ipxe) };
  const discover = dhcpPacket({ type: 1, xid: randomBytes(4).readUInt32BE(0), arch, ipxe: c.ipxe });
  const replies = await exchange(sock, discover, '255.255.255.255', 67, 8000, (got) =>
    got.some((g) => g.yiaddr === '0.0.0.0' && g.vendorClass?.startsWith('PXEClient')) && got.some((g) => g.yiaddr !== '0.0.0.0'),
  );
  const proxy = replies.find((g) => g.yiaddr === '0.0.0.0' && g.vendorClass?.startsWith('PXEClient'));
  const store = replies.find((g) => g.yiaddr !== '0.0.0.0');
  result.storeOffer = store && { server: store.serverId, yiaddr: store.yiaddr, file: store.file || undefined };
  result.proxyOffer = proxy && {
    server: proxy.serverId,
    yiaddr: proxy.yiaddr,
    siaddr: proxy.siaddr,
    file: proxy.file || undefined,
    pxe: proxy.pxe,
  };
  let bootFile = proxy?.file || undefined;
  let bootServer = proxy && proxy.siaddr !== '0.0.0.0' ? proxy.siaddr : proxy?.serverId;
  if (proxy && !bootFile) {
    // boot-server discovery on port 4011, as the PXE spec (and edk2) do after a proxy offer
    const item = proxy.pxe?.menu?.[0]?.type;
    const req = dhcpPacket({ type: 3, xid: randomBytes(4).readUInt32BE(0), ciaddr: myAddress, arch, ipxe: c.ipxe, bootItem: item });
    const acks = await exchange(sock, req, proxy.serverId, 4011, 5000, (got) => got.length > 0);
    const ack = acks[0];
    result.bootServerReply = ack && { from: ack.from, siaddr: ack.siaddr, file: ack.file || undefined, bootItem: item };
    bootFile = ack?.file || undefined;
    if (ack && ack.siaddr !== '0.0.0.0') bootServer = ack.siaddr;
  }
  result.bootFile = bootFile;
  if (bootFile && bootServer && !/^[a-z]+:\/\//.test(bootFile)) result.tftp = await tftpGet(bootServer, bootFile);
  console.log(JSON.stringify(result));
}
sock.close();
clearTimeout(hardDeadline);
