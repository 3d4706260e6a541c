// REGISTRY/REPO[:TAG][@sha256:HEX], as `docker`, `skopeo` and `oras` write it, except that the
// registry is never implied: `edgeimg publish --to store-0412` cannot silently go to Docker Hub.
// Grammar: distribution/reference (reference.go): path components
// [a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*, tags [\w][\w.-]{0,127}, names of at most 255 characters.

import { UsageError } from '../util/diagnostics.js';

export interface OciReference {
  /** host[:port] as given (the key for credentials). */
  registry: string;
  /** host[:port] the HTTP API is at (docker.io is served by registry-1.docker.io). */
  apiHost: string;
  repository: string;
  tag?: string;
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
export const DIGEST = /^sha256:[0-9a-f]{64}$/;
// a DNS name or IPv4 address with an optional port, or a bracketed IPv6 address with one
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

export const DEFAULT_TAG = 'latest';

/** Parses `ref`; `flag` names the option in messages. */
export function parseReference(ref: string, flag: string): OciReference {
  const bad = (why: string): UsageError => new UsageError(`${flag} ${JSON.stringify(ref.slice(0, 300))}: ${why}; expected REGISTRY/REPOSITORY[:TAG] or REGISTRY/REPOSITORY@sha256:DIGEST`);
  const slash = ref.indexOf('/');
  if (slash <= 0) throw bad('no registry host');
  const registry = ref.slice(0, slash);
  if (!HOST.test(registry)) throw bad(`"${registry.slice(0, 100)}" is not a registry host[:port]`);
  let rest = ref.slice(slash + 1);
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad('the digest must be sha256: and 64 lowercase hex digits');
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`"${tag.slice(0, 140)}" is not a tag (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  const dockerHub = registry === 'docker.io' || registry === 'index.docker.io';
  const repository = dockerHub && !rest.includes('/') ? `library/${rest}` : rest;
  if (repository.length === 0 || repository.length > 255 || !repository.split('/').every((c) => COMPONENT.test(c))) {
    throw bad('the repository must be lowercase path components (a-z, 0-9, separated by . _ __ or -) joined by /, at most 255 characters');
  }
  return { registry, apiHost: dockerHub ? 'registry-1.docker.io' : registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/** registry/repository:tag, registry/repository@digest, or both. */
export function formatReference(r: Pick<OciReference, 'registry' | 'repository' | 'tag' | 'digest'>): string {
  return `${r.registry}/${r.repository}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}
