export type { CertAndKey, KairosSecrets, SiteSecrets, TalosSecrets } from './types.js';
export {
  generateTalosSecrets,
  generateKairosSecrets,
  generateToken,
  randomBase64,
  TOKEN_RE,
  CA_VALIDITY_MS,
  ADMIN_VALIDITY_MS,
  SERVICE_ACCOUNT_RSA_BITS,
  type GenerateOptions,
} from './generate.js';
export {
  loadOrCreateSiteSecrets,
  readSiteSecrets,
  readSiteStore,
  writeSiteStore,
  siteSecretsAgePath,
  SECRETS_AGE_FILE_NAME,
  type StoredSiteSecrets,
  type LoadOrCreateOptions,
  parseSiteSecrets,
  serializeSiteSecrets,
  siteSecretsPath,
  siteStoreFingerprintSync,
  SECRETS_FILE_NAME,
  SECRETS_FORMAT_VERSION,
  type SiteOs,
} from './store.js';
export { renderTalosconfig, type RenderTalosconfigArgs } from './talosconfig.js';
export { checkTalosPki, checkKairosPki, type CheckOptions } from './check.js';
export { parsePrivateKeyPem, toStandardPem } from './pem.js';
export { ageRecipientProblem, isAgeRecipient, loadAgeIdentity, ageIdentitySource, ageEncrypt, ageDecrypt, AGE_IDENTITY_VARS, type AgeIdentity } from './age.js';
