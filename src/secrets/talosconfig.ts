// talosconfig (the talosctl client configuration) for a site, built from stored secrets only,
// so it is a pure function of its inputs: same secrets + endpoints + nodes => same bytes.
//
// Layout (as talosctl writes it):
//   context: <name>
//   contexts:
//     <name>:
//       endpoints: [...]
//       nodes: [...]          # omitted when empty, as talosctl does
//       ca:  base64(OS CA certificate PEM)
//       crt: base64(admin client certificate PEM)
//       key: base64(admin client key PEM)

import { stringify } from 'yaml';
import type { TalosSecrets } from './types.js';

export interface RenderTalosconfigArgs {
  context: string;
  endpoints: string[];
  nodes: string[];
  secrets: TalosSecrets;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

export function renderTalosconfig(args: RenderTalosconfigArgs): string {
  const { context, endpoints, nodes, secrets } = args;
  if (context.trim() === '') throw new Error('talosconfig context name must not be empty');
  if (endpoints.length === 0) throw new Error(`talosconfig context '${context}' needs at least one endpoint`);
  const ctx: Record<string, unknown> = { endpoints: [...endpoints] };
  if (nodes.length > 0) ctx['nodes'] = [...nodes];
  ctx['ca'] = b64(secrets.certs.os.crt);
  ctx['crt'] = b64(secrets.admin.crt);
  ctx['key'] = b64(secrets.admin.key);
  return stringify({ context, contexts: { [context]: ctx } }, { indent: 4, lineWidth: 0, minContentWidth: 0 });
}
