// Offline k0s worker join, the way `k0s token pre-shared --role worker` does it (k0s
// cmd/token/preshared.go, docs "Install using custom CA certificate"):
//  - a Kubernetes bootstrap-token Secret that the controller applies from its manifest dir;
//  - a join token = base64(gzip(kubeconfig)) (pkg/token/joinencode.go) whose kubeconfig names
//    the API server, embeds the cluster CA and carries the bootstrap token as the bearer token
//    of user `kubelet-bootstrap` (pkg/token/kubeconfig.go; the user name tells k0s the role).
// The Secret carries no auth-extra-groups: k0s binds the default `system:bootstrappers` group
// to node bootstrapping and CSR auto-approval (pkg/component/controller/systemrbac.go), and
// worker tokens from `k0s token create` carry none either (pkg/token/manager.go).

import { gzipStored } from './gzip.js';
import { yamlText } from './text.js';

const BOOTSTRAP_TOKEN = /^([a-z0-9]{6})\.([a-z0-9]{16})$/;

/** Context and cluster name k0s uses in join-token kubeconfigs. */
export const K0S_CONTEXT = 'k0s';
export const K0S_WORKER_USER = 'kubelet-bootstrap';

export function splitBootstrapToken(token: string): { id: string; secret: string } {
  const m = BOOTSTRAP_TOKEN.exec(token);
  if (m === null) throw new Error('internal error: the Kairos site token is not a [a-z0-9]{6}.[a-z0-9]{16} bootstrap token');
  return { id: m[1]!, secret: m[2]! };
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** The bootstrap-token Secret (same data keys as kubeadm's BootstrapTokenToSecret). No expiry: edge nodes may be installed months after the media is built. */
export function bootstrapTokenSecret(token: string): string {
  const { id, secret } = splitBootstrapToken(token);
  return yamlText({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `bootstrap-token-${id}`, namespace: 'kube-system' },
    type: 'bootstrap.kubernetes.io/token',
    data: {
      description: b64('Worker bootstrap token pre-shared by edgeimg'),
      'token-id': b64(id),
      'token-secret': b64(secret),
      'usage-bootstrap-authentication': b64('true'),
    },
  });
}

/** The kubeconfig inside a worker join token, with the keys clientcmd writes. */
export function workerJoinKubeconfig(server: string, caPem: string, token: string): string {
  splitBootstrapToken(token);
  return yamlText({
    apiVersion: 'v1',
    clusters: [{ cluster: { 'certificate-authority-data': b64(caPem), server }, name: K0S_CONTEXT }],
    contexts: [{ context: { cluster: K0S_CONTEXT, user: K0S_WORKER_USER }, name: K0S_CONTEXT }],
    'current-context': K0S_CONTEXT,
    kind: 'Config',
    preferences: {},
    users: [{ name: K0S_WORKER_USER, user: { token } }],
  });
}

export function workerJoinToken(server: string, caPem: string, token: string): string {
  const kubeconfig = workerJoinKubeconfig(server, caPem, token);
  return Buffer.from(gzipStored(Buffer.from(kubeconfig, 'utf8'))).toString('base64');
}
