// Values `talosctl gen config` fills in by itself (pkg/machinery/constants and
// pkg/machinery/config/generate in siderolabs/talos). Kept in one place so that a Talos release
// that changes one of them changes one line here.

export const KUBELET_IMAGE = 'ghcr.io/siderolabs/kubelet';
export const KUBE_APISERVER_IMAGE = 'registry.k8s.io/kube-apiserver';
export const KUBE_CONTROLLER_MANAGER_IMAGE = 'registry.k8s.io/kube-controller-manager';
export const KUBE_SCHEDULER_IMAGE = 'registry.k8s.io/kube-scheduler';
export const KUBE_PROXY_IMAGE = 'registry.k8s.io/kube-proxy';

export const DNS_DOMAIN = 'cluster.local';
export const KUBEPRISM_PORT = 7445;
export const DISCOVERY_SERVICE_ENDPOINT = 'https://discovery.talos.dev/';
export const FLANNEL_BACKEND = 'vxlan';
export const FLANNEL_BACKEND_PORT = 4789;
/** block.FilesystemTrimConfig: weekly fstrim, as generated for Talos 1.14. */
export const FILESYSTEM_TRIM_INTERVAL = '168h0m0s';

export const LABEL_CONTROL_PLANE = 'node-role.kubernetes.io/control-plane';
export const LABEL_EXCLUDE_FROM_EXTERNAL_LB = 'node.kubernetes.io/exclude-from-external-load-balancers';
/** KubeNodeConfig taint values are `<value>:<effect>`; the control-plane taint has no value. */
export const TAINT_NO_SCHEDULE = ':NoSchedule';

/** k8s.DefaultPodSecurityAdmissionControlConfig / the v1alpha1 apiServer.admissionControl default. */
export function podSecurityConfiguration(): Record<string, unknown> {
  return {
    apiVersion: 'pod-security.admission.config.k8s.io/v1alpha1',
    defaults: {
      audit: 'restricted',
      'audit-version': 'latest',
      enforce: 'baseline',
      'enforce-version': 'latest',
      warn: 'restricted',
      'warn-version': 'latest',
    },
    exemptions: { namespaces: ['kube-system'], runtimeClasses: [], usernames: [] },
    kind: 'PodSecurityConfiguration',
  };
}

/** v1alpha1.APIServerDefaultAuditPolicy */
export function defaultAuditPolicy(): Record<string, unknown> {
  return { apiVersion: 'audit.k8s.io/v1', kind: 'Policy', rules: [{ level: 'Metadata' }] };
}

/** k8s.DefaultAuthenticationConfig */
export function defaultAuthenticationConfiguration(): Record<string, unknown> {
  return {
    anonymous: { conditions: [{ path: '/livez' }, { path: '/readyz' }, { path: '/healthz' }], enabled: true },
    jwt: [],
  };
}

/** Image reference `<repo>:v<kubernetes version>`. */
export function kubeImage(repo: string, kubernetesTag: string): string {
  return `${repo}:${kubernetesTag}`;
}
