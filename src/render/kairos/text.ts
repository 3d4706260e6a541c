// Serializers for the small text files the Kairos configs drop on disk. The files are built as
// data and serialized here rather than through handlebars templates: every value passes through
// one quoting rule per format, and the output is the same bytes for the same data.

import YAML from 'yaml';

/** One `[Section]` of a systemd-style or connman INI file; repeated keys are allowed. */
export interface IniSection {
  name: string;
  entries: Array<[key: string, value: string]>;
}

/** systemd unit/network syntax: `Key=Value`, sections separated by a blank line. */
export function systemdIni(sections: IniSection[]): string {
  return sections.map((s) => [`[${s.name}]`, ...s.entries.map(([k, v]) => `${k}=${v}`)].join('\n')).join('\n\n') + '\n';
}

/** connman provisioning syntax: `Key = Value`. */
export function connmanIni(sections: IniSection[]): string {
  return sections.map((s) => [`[${s.name}]`, ...s.entries.map(([k, v]) => `${k} = ${v}`)].join('\n')).join('\n\n') + '\n';
}

/** A TOML basic string. JSON string escapes are a subset of TOML's, except for U+007F. */
export function tomlString(value: string): string {
  return JSON.stringify(value).replace(/\u007f/g, '\\u007F');
}

export function tomlStringArray(values: string[]): string {
  return `[${values.map(tomlString).join(', ')}]`;
}

/**
 * YAML for files that Go programs (k3s, k0s, kube-vip's API server) read. YAML 1.1 output quotes
 * every string a 1.1 parser would read as a bool, number or sexagesimal (`on`, `0644`, MACs).
 */
export function yamlText(value: unknown): string {
  return new YAML.Document(value, { version: '1.1', aliasDuplicateObjects: false }).toString({ lineWidth: 0 });
}

/** Several objects as one multi-document YAML stream. */
export function yamlStream(values: unknown[]): string {
  return values.map(yamlText).join('---\n');
}
