// Strict validation of a node's Kairos cloud-config after overlays, against our own schema
// (schemas/kairos/cloud-config.strict.schema.json): every key Kairos v3.5.1 reads, with the
// types its Go decoders accept, and nothing else. Kairos itself ignores unknown keys, and one
// type error inside `stages:` makes yip drop every stage of the file without a word, so a
// typo in an overlay would otherwise ship as a silent no-op. Sources: docs/consumers.md.

import type { ErrorObject, ValidateFunction } from 'ajv';
import type { NodePlan, SitePlan } from '../../catalogue/plan.js';
import { closest } from '../../catalogue/schema.js';
import { packagePath } from '../../util/paths.js';
import { excerpt } from '../../util/diagnostics.js';
import { loadValidators, type ValidatorSet } from '../../util/schema-validators.js';

export interface KairosConfigError {
  /** JSON pointer into the cloud-config. */
  path: string;
  message: string;
}

export function kairosStrictSchemaPath(): string {
  return packagePath('schemas', 'kairos', 'cloud-config.strict.schema.json');
}

let validator: ValidateFunction | undefined;

/** Precompiled by scripts/precompile.ts; `verbose` because messages read `parentSchema`. */
export const KAIROS_STRICT_VALIDATORS: ValidatorSet = {
  id: 'kairos-cloud-config-strict',
  schema: ['schemas', 'kairos', 'cloud-config.strict.schema.json'],
  dialect: '2020-12',
  options: { allErrors: true, verbose: true, strict: true, allowUnionTypes: true },
  refs: '#',
};

function compiled(): ValidateFunction {
  validator ??= loadValidators(KAIROS_STRICT_VALIDATORS).get('#')!;
  return validator;
}

/** The provider block each role runs; provider-kairos picks k3s > k3s-agent > k0s > k0s-worker. */
const PROVIDER_BLOCK = {
  k3s: { controlplane: 'k3s', worker: 'k3s-agent' },
  k0s: { controlplane: 'k0s', worker: 'k0s-worker' },
} as const;
const PROVIDER_BLOCKS = ['k3s', 'k3s-agent', 'k0s', 'k0s-worker'] as const;

export function validateKairosConfig(config: Record<string, unknown>, site: SitePlan, node: NodePlan): KairosConfigError[] {
  const validate = compiled();
  const errors: KairosConfigError[] = [];
  if (!validate(config)) errors.push(...dedupe(validate.errors ?? []).map(describe));
  // Exactly the block this node's role runs may be enabled: provider-kairos starts the first
  // enabled block in its precedence order, whatever the image's binary or the node's role.
  const want = PROVIDER_BLOCK[site.kairos!.provider][node.role];
  const block = config[want] as { enabled?: unknown } | undefined;
  if (block === undefined || block.enabled !== true) {
    errors.push({ path: `/${want}`, message: `${want}.enabled must be true: this ${node.role} node runs ${site.kairos!.provider} through the "${want}" block, and provider-kairos starts nothing unless enabled is the boolean true` });
  }
  for (const other of PROVIDER_BLOCKS) {
    if (other === want) continue;
    const b = config[other] as { enabled?: unknown } | undefined;
    if (b?.enabled === true) {
      errors.push({ path: `/${other}/enabled`, message: `${other} is enabled, but this ${node.role} node runs ${site.kairos!.provider} through "${want}"; provider-kairos would start only one of them` });
    }
  }
  return errors;
}

/** Ajv reports the same missing/extra key once per failing branch; keep one of each. */
function dedupe(errs: ErrorObject[]): ErrorObject[] {
  const seen = new Set<string>();
  return errs.filter((e) => {
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function field(path: string): string {
  return path
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? `[${s}]` : `.${s}`))
    .join('')
    .replace(/^\./, '');
}

function describe(e: ErrorObject): KairosConfigError {
  const at = field(e.instancePath) || 'the cloud-config';
  const desc = (e.parentSchema as { description?: string } | undefined)?.description;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String((e.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys((e.parentSchema as { properties?: object }).properties ?? {});
      const hint = key.length <= 64 ? closest(key, allowed) : undefined;
      return {
        path: `${e.instancePath}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`,
        message: `unknown key ${excerpt(key)} in ${at}${hint ? ` (did you mean "${hint}"?)` : ''}: Kairos ignores it silently`,
      };
    }
    case 'propertyNames': {
      const name = String((e.params as { propertyName: string }).propertyName);
      return { path: `${e.instancePath}/${name}`, message: `unknown stage ${excerpt(name)}: Kairos never runs it` };
    }
    case 'required': {
      const missing = (e.params as { missingProperty: string }).missingProperty;
      return { path: e.instancePath, message: `${at} needs "${missing}"${desc ? ` (${desc})` : ''}` };
    }
    case 'type': {
      const type = (e.params as { type: string | string[] }).type;
      return { path: e.instancePath, message: `${at} must be ${Array.isArray(type) ? type.join(' or ') : type}${desc ? ` (${desc})` : ''}` };
    }
    case 'pattern':
      return { path: e.instancePath, message: `${at} is not valid${desc ? `: ${desc}` : ''}` };
    default:
      return { path: e.instancePath, message: `${at} ${e.message ?? 'is invalid'}${desc ? ` (${desc})` : ''}` };
  }
}
