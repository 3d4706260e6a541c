// The legacy v1alpha1 Config document. What it still holds depends on the version contract:
// for 1.13 it carries the kubelet, install and most cluster settings; for 1.14 those moved to
// typed documents and the schema rejects them here, so only identity, the OS CA, the trustd and
// bootstrap tokens and etcd remain.

import type { DiskPlan } from '../../../catalogue/plan.js';
import { machineCertSANs, sortedRecord, type RenderContext } from '../context.js';
import {
  DNS_DOMAIN,
  KUBE_APISERVER_IMAGE,
  KUBE_CONTROLLER_MANAGER_IMAGE,
  KUBE_PROXY_IMAGE,
  KUBE_SCHEDULER_IMAGE,
  KUBELET_IMAGE,
  KUBEPRISM_PORT,
  LABEL_EXCLUDE_FROM_EXTERNAL_LB,
  defaultAuditPolicy,
  kubeImage,
  podSecurityConfiguration,
} from '../defaults.js';
import { pemBase64, type TalosDocument } from '../document.js';

/** v1alpha1 machine.install.diskSelector (1.13); the same fields Talos matches at install time. */
export function installDiskSelector(disk: DiskPlan): Record<string, string> | undefined {
  if (!disk.selector) return undefined;
  const { size, model, type, busPath } = disk.selector;
  const sel: Record<string, string> = {};
  if (size) sel.size = size;
  if (model) sel.model = model;
  if (type) sel.type = type;
  if (busPath) sel.busPath = busPath;
  return sel;
}

function machineSection(ctx: RenderContext): Record<string, unknown> {
  const { secrets, contract, node, site } = ctx;
  const os = secrets.certs.os;
  const machine: Record<string, unknown> = {
    type: ctx.controlPlane ? 'controlplane' : 'worker',
    token: secrets.trustdToken,
    ca: ctx.controlPlane ? { crt: pemBase64(os.crt), key: pemBase64(os.key) } : { crt: pemBase64(os.crt) },
    certSANs: machineCertSANs(ctx),
  };

  if (!contract.multidocKubernetes) {
    machine.kubelet = {
      image: kubeImage(KUBELET_IMAGE, ctx.kubernetesTag),
      defaultRuntimeSeccompProfileEnabled: true,
      disableManifestsDirectory: true,
      nodeIP: { validSubnets: [site.network.subnet] },
    };
  }

  if (!contract.unattendedInstall) {
    const disk = node.hardware.disk;
    const install: Record<string, unknown> = {};
    if (disk.path) install.disk = disk.path;
    else install.diskSelector = installDiskSelector(disk);
    install.image = ctx.installerImage;
    install.wipe = false;
    install.grubUseUKICmdline = true;
    machine.install = install;
  }

  const features: Record<string, unknown> = { diskQuotaSupport: true };
  if (!contract.multidocKubernetes) features.kubePrism = { enabled: true, port: KUBEPRISM_PORT };
  if (!contract.hostDnsInResolverConfig) features.hostDNS = { enabled: true, forwardKubeDNSToHost: true };
  machine.features = features;

  if (!contract.multidocKubernetes) {
    const labels: Record<string, string> = { ...node.labels };
    if (ctx.controlPlane) labels[LABEL_EXCLUDE_FROM_EXTERNAL_LB] = '';
    if (Object.keys(labels).length > 0) machine.nodeLabels = sortedRecord(labels);
  }
  return machine;
}

function clusterSection(ctx: RenderContext): Record<string, unknown> {
  const { secrets, contract, site } = ctx;
  const cp = ctx.controlPlane;
  const certs = secrets.certs;
  const cluster: Record<string, unknown> = {};

  if (!contract.discoveryMultidoc) {
    cluster.id = secrets.clusterId;
    cluster.secret = secrets.clusterSecret;
  }
  if (!contract.multidocKubernetes) {
    cluster.controlPlane = { endpoint: ctx.endpoint };
    cluster.clusterName = site.clusterName;
    cluster.network = { dnsDomain: DNS_DOMAIN, podSubnets: site.cluster.podCidrs, serviceSubnets: site.cluster.serviceCidrs };
  }
  cluster.token = secrets.bootstrapToken;
  if (!contract.multidocKubernetes) {
    if (cp) cluster.secretboxEncryptionSecret = secrets.secretboxEncryptionSecret;
    cluster.ca = cp ? { crt: pemBase64(certs.k8s.crt), key: pemBase64(certs.k8s.key) } : { crt: pemBase64(certs.k8s.crt) };
    if (cp) {
      cluster.aggregatorCA = { crt: pemBase64(certs.k8sAggregator.crt), key: pemBase64(certs.k8sAggregator.key) };
      cluster.serviceAccount = { key: pemBase64(certs.k8sServiceAccount.key) };
      cluster.apiServer = {
        image: kubeImage(KUBE_APISERVER_IMAGE, ctx.kubernetesTag),
        certSANs: [ctx.endpointHost],
        admissionControl: [{ name: 'PodSecurity', configuration: podSecurityConfiguration() }],
        auditPolicy: defaultAuditPolicy(),
      };
      cluster.controllerManager = { image: kubeImage(KUBE_CONTROLLER_MANAGER_IMAGE, ctx.kubernetesTag) };
      cluster.proxy = { image: kubeImage(KUBE_PROXY_IMAGE, ctx.kubernetesTag) };
      cluster.scheduler = { image: kubeImage(KUBE_SCHEDULER_IMAGE, ctx.kubernetesTag) };
    }
  }
  if (!contract.discoveryMultidoc) {
    cluster.discovery = { enabled: true, registries: { kubernetes: { disabled: true }, service: {} } };
  }
  if (cp) {
    cluster.etcd = { ca: { crt: pemBase64(certs.etcd.crt), key: pemBase64(certs.etcd.key) } };
  }
  if (cp && !contract.multidocKubernetes && site.cluster.allowSchedulingOnControlPlanes) {
    cluster.allowSchedulingOnControlPlanes = true;
  }
  return cluster;
}

export function v1alpha1Config(ctx: RenderContext): TalosDocument[] {
  return [{ version: 'v1alpha1', debug: false, machine: machineSection(ctx), cluster: clusterSection(ctx) }];
}
