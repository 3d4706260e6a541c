// The shape shared by every Talos document builder.

/** One machine-config document: the v1alpha1 Config (`version: v1alpha1`, no kind) or a typed
 * document (`apiVersion: v1alpha1`, `kind: ...`). Plain data, ready for YAML. */
export type TalosDocument = Record<string, unknown>;

/** A typed (non-v1alpha1) document. */
export function typedDocument(kind: string, fields: Record<string, unknown>): TalosDocument {
  return { apiVersion: 'v1alpha1', kind, ...fields };
}

/** The document's kind; `v1alpha1` for the legacy Config document. */
export function documentKind(doc: TalosDocument): string {
  if (typeof doc.kind === 'string') return doc.kind;
  if (doc.version === 'v1alpha1' && doc.apiVersion === undefined) return 'v1alpha1';
  return 'unknown';
}

/** v1alpha1 Config fields hold PEM as base64 of the PEM text (Talos' PEMEncoded* types). */
export function pemBase64(pem: string): string {
  return Buffer.from(pem, 'utf8').toString('base64');
}
