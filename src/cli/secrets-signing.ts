// `edgeimg secrets signing-key [--allowed-signers | --public] [--catalogue DIR] [--secrets DIR]`:
// prints the fleet's public signing key, as an OpenSSH public key line (to commit as
// catalogue/signing.pub) or as the allowed_signers line `ssh-keygen -Y verify` takes. Never
// prints the private key. (Dispatched from `edgeimg secrets`, src/cli/secrets.ts.)

import { readFile } from 'node:fs/promises';
import { EnvironmentError, UsageError } from '../util/diagnostics.js';
import { EXIT, parse, type Io } from './main.js';
import { anchorPlaces, resolveTrustAnchor, secretsSigningKey } from '../trust/signing-key.js';
import { allowedSignersLine, fingerprint, FLEET_PRINCIPAL, parsePrivateKey, publicKeyLine, SshFormatError, type SshPublicKey } from '../trust/sshsig.js';

export const SIGNING_KEY_HELP = `edgeimg secrets signing-key: print the fleet's manifest signing key (public half only): the
catalogue's signing.pub, else the key build keeps in SECRETS/_signing/ (or --signing-key FILE).

  edgeimg secrets signing-key [--public | --allowed-signers] [--catalogue DIR] [--secrets DIR]
                              [--signing-key FILE] [--json]

  --public           the OpenSSH public key line (default); commit it:
                     edgeimg secrets signing-key --public > catalogue/signing.pub
  --allowed-signers  the line for ssh-keygen -Y verify -f allowed_signers -I edgeimg-fleet
                     -n edgeimg-manifest -s manifest.json.sig < manifest.json
Exit: 0 printed; 2 usage; 3 no fleet key yet (build a site first) or an unreadable key.`;

export async function runSigningKey(args: string[], io: Io): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    io.out(`${SIGNING_KEY_HELP}\n`);
    return EXIT.ok;
  }
  const { values } = parse(args, {
    public: { type: 'boolean' },
    'allowed-signers': { type: 'boolean' },
    catalogue: { type: 'string', default: 'catalogue' },
    secrets: { type: 'string', default: process.env.EDGEIMG_SECRETS_DIR ?? 'secrets' },
    'signing-key': { type: 'string' },
  });
  if (values.public && values['allowed-signers']) throw new UsageError('give --public or --allowed-signers, not both');
  const key = await fleetPublicKey(values.catalogue!, values.secrets!, values['signing-key']);
  const line = values['allowed-signers'] ? allowedSignersLine(FLEET_PRINCIPAL, key.key) : publicKeyLine(key.key, FLEET_PRINCIPAL);
  if (values.json) io.out(`${JSON.stringify({ ok: true, fingerprint: fingerprint(key.key), source: key.path, publicKey: publicKeyLine(key.key, FLEET_PRINCIPAL), allowedSigners: allowedSignersLine(FLEET_PRINCIPAL, key.key) })}\n`);
  else io.out(`${line}\n`);
  io.err(`edgeimg: fleet signing key ${fingerprint(key.key)} (${key.path})\n`);
  return EXIT.ok;
}

async function fleetPublicKey(catalogueDir: string, secretsDir: string, keyFile: string | undefined): Promise<{ key: SshPublicKey; path: string }> {
  if (keyFile !== undefined) {
    let text: string;
    try {
      text = await readFile(keyFile, 'utf8');
    } catch (err) {
      throw new EnvironmentError(`cannot read the signing key ${keyFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      return { key: parsePrivateKey(text, keyFile).publicKey, path: keyFile };
    } catch (err) {
      if (err instanceof SshFormatError) throw new EnvironmentError(err.message);
      throw err;
    }
  }
  const anchor = await resolveTrustAnchor({ catalogueDir, secretsDir });
  if (anchor) return anchor;
  // a key file without its .pub (restored from a secret store): derive the public half
  const priv = secretsSigningKey(secretsDir);
  let text: string | undefined;
  try {
    text = await readFile(priv, 'utf8');
  } catch {
    text = undefined;
  }
  if (text !== undefined) {
    try {
      return { key: parsePrivateKey(text, priv).publicKey, path: priv };
    } catch (err) {
      if (err instanceof SshFormatError) throw new EnvironmentError(err.message);
      throw err;
    }
  }
  throw new EnvironmentError(`no fleet signing key yet (looked for ${anchorPlaces({ catalogueDir, secretsDir })} and ${priv}): edgeimg build creates one on its first build`);
}
