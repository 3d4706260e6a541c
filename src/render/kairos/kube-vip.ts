// kube-vip for the k3s API VIP. provider-kairos has a `kubevip:` block, but only its p2p
// roles act on it (internal/role/p2p/kubevip.go); the static, no-p2p bootstrap path that we
// use ignores it. So we hand k3s the manifests itself: k3s applies every file in
// /var/lib/rancher/k3s/server/manifests on its servers (the same directory provider-kairos
// writes kubevip.yaml to). ARP mode with leader election: one server answers for the VIP.

import type { SitePlan } from '../../catalogue/plan.js';
import { yamlStream } from './text.js';

export const KUBE_VIP_MANIFEST = '/var/lib/rancher/k3s/server/manifests/edgeimg-kube-vip.yaml';
/** The version provider-kairos defaults to (DefaultKubeVIPVersion). */
export const KUBE_VIP_IMAGE = 'ghcr.io/kube-vip/kube-vip:v1.0.1';

const NAME = 'kube-vip';
const NAMESPACE = 'kube-system';

export function kubeVipManifest(site: SitePlan, vip: string): string {
  const env: Array<Record<string, unknown>> = [
    { name: 'vip_arp', value: 'true' },
    { name: 'port', value: '6443' },
    { name: 'vip_nodename', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
  ];
  // No vip_interface: installed Kairos names NICs predictably (net.ifnames=1), so a class's
  // kernel name (eth0) need not exist. Without one kube-vip binds to the interface holding the
  // default route, which is the primary NIC our network step configures (matched by MAC).
  env.push(
    { name: 'vip_subnet', value: '32' },
    { name: 'cp_enable', value: 'true' },
    { name: 'cp_namespace', value: NAMESPACE },
    { name: 'svc_enable', value: 'false' },
    { name: 'vip_leaderelection', value: 'true' },
    { name: 'vip_leasename', value: 'plndr-cp-lock' },
    { name: 'vip_leaseduration', value: '5' },
    { name: 'vip_renewdeadline', value: '3' },
    { name: 'vip_retryperiod', value: '1' },
    { name: 'address', value: vip },
  );
  const labels = { 'app.kubernetes.io/name': NAME, 'app.kubernetes.io/part-of': `edgeimg-${site.id}` };
  return yamlStream([
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: NAME, namespace: NAMESPACE } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'edgeimg:kube-vip' },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] },
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: 'edgeimg:kube-vip' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edgeimg:kube-vip' },
      subjects: [{ kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE }],
    },
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: NAME, namespace: NAMESPACE, labels },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': NAME } },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: NAME,
            hostNetwork: true,
            nodeSelector: { 'node-role.kubernetes.io/control-plane': 'true' },
            tolerations: [{ operator: 'Exists' }],
            containers: [
              {
                name: NAME,
                image: KUBE_VIP_IMAGE,
                args: ['manager'],
                env,
                securityContext: { capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } },
              },
            ],
          },
        },
      },
    },
  ]);
}
