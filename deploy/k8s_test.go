package deploy

import (
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	yamlv3 "go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "sigs.k8s.io/yaml"

	"github.com/twicehq/twice/config"
)

// The manifests of deploy/k8s are validated by strict decoding into the
// Kubernetes API's own Go types (k8s.io/api, and the Prometheus Operator's
// for the ServiceMonitor): YAML to JSON, then a decoder that refuses
// unknown fields and values of the wrong type (quantities, ports). No
// schema validator (kubeconform) is used: its Go module is not served
// here, nor are the Kubernetes JSON schemas it fetches.

// k8sManifests is deploy/k8s, decoded.
type k8sManifests struct {
	deployment     appsv1.Deployment
	pvc            corev1.PersistentVolumeClaim
	configMap      corev1.ConfigMap
	service        corev1.Service
	serviceMonitor monitoringv1.ServiceMonitor
}

// decodeStrict decodes one manifest into obj, refusing unknown fields,
// and checks its apiVersion and kind.
func decodeStrict(data []byte, apiVersion, kind string, obj any) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := k8syaml.Unmarshal(data, &head); err != nil {
		return err
	}
	if head.APIVersion != apiVersion || head.Kind != kind {
		return &wrongKind{head.APIVersion + " " + head.Kind, apiVersion + " " + kind}
	}
	return k8syaml.UnmarshalStrict(data, obj)
}

type wrongKind struct{ got, want string }

func (e *wrongKind) Error() string { return "is " + e.got + ", want " + e.want }

func loadK8s(t *testing.T) *k8sManifests {
	t.Helper()
	m := &k8sManifests{}
	for _, f := range []struct {
		file, apiVersion, kind string
		obj                    any
	}{
		{"deployment.yaml", "apps/v1", "Deployment", &m.deployment},
		{"pvc.yaml", "v1", "PersistentVolumeClaim", &m.pvc},
		{"configmap.yaml", "v1", "ConfigMap", &m.configMap},
		{"service.yaml", "v1", "Service", &m.service},
		{"servicemonitor.yaml", "monitoring.coreos.com/v1", "ServiceMonitor", &m.serviceMonitor},
	} {
		if err := decodeStrict(read(t, filepath.Join("k8s", f.file)), f.apiVersion, f.kind, f.obj); err != nil {
			t.Fatalf("deploy/k8s/%s: %v", f.file, err)
		}
	}
	return m
}

// TestK8sStrictDecodingRefuses: the validation is not a no-op: a
// misspelled field, a bad quantity and a wrong kind are refused.
func TestK8sStrictDecodingRefuses(t *testing.T) {
	good := string(read(t, "k8s/deployment.yaml"))
	for name, bad := range map[string]string{
		"unknown field": strings.Replace(good, "replicas: 1", "replica: 1", 1),
		"bad quantity":  strings.Replace(good, "memory: 1Gi", "memory: lots", 1),
		"wrong type":    strings.Replace(good, "replicas: 1", "replicas: one", 1),
	} {
		if bad == good {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if err := decodeStrict([]byte(bad), "apps/v1", "Deployment", &appsv1.Deployment{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := decodeStrict([]byte(good), "v1", "Service", &corev1.Service{}); err == nil {
		t.Error("a Deployment was accepted as a Service")
	}
}

func TestK8sDeployment(t *testing.T) {
	m := loadK8s(t)
	d := m.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1: one twice per state", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("strategy %q, want Recreate: the state is one volume one process holds", d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
		}
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]

	// Security: non-root (distroless nonroot), read-only root fs.
	psc, csc := pod.Spec.SecurityContext, c.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65532 {
		t.Errorf("pod securityContext %+v, want runAsNonRoot and runAsUser 65532", psc)
	}
	if psc == nil || psc.FSGroup == nil || *psc.FSGroup != 65532 {
		t.Errorf("pod securityContext has no fsGroup 65532: the state volume would not be writable")
	}
	if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem ||
		csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
		t.Errorf("container securityContext %+v, want readOnlyRootFilesystem and no privilege escalation", csc)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v, want cpu and memory requests and a memory limit", c.Resources)
	}

	// The config: --config FILE is the ConfigMap's key, mounted.
	i := slices.Index(c.Args, "--config")
	if len(c.Args) == 0 || c.Args[0] != "watch" || i < 0 || i+1 >= len(c.Args) {
		t.Fatalf("args %q, want watch --config FILE", c.Args)
	}
	cfgFile := c.Args[i+1]
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		vols[v.Name] = v
	}
	mountOf := func(dir string) (corev1.Volume, bool) {
		for _, vm := range c.VolumeMounts {
			if path.Clean(vm.MountPath) == dir {
				v, ok := vols[vm.Name]
				return v, ok
			}
		}
		return corev1.Volume{}, false
	}
	cv, ok := mountOf(path.Dir(cfgFile))
	if !ok || cv.ConfigMap == nil || cv.ConfigMap.Name != m.configMap.Name {
		t.Errorf("%s is not on the ConfigMap %s", path.Dir(cfgFile), m.configMap.Name)
	}
	if _, ok := m.configMap.Data[path.Base(cfgFile)]; !ok {
		t.Errorf("ConfigMap %s has no key %s (the --config file)", m.configMap.Name, path.Base(cfgFile))
	}

	// The state: the state_dir of that config is the PVC.
	cfg := k8sConfig(t, m)
	sv, ok := mountOf(path.Clean(cfg.Watch.StateDir))
	if !ok || sv.PersistentVolumeClaim == nil || sv.PersistentVolumeClaim.ClaimName != m.pvc.Name {
		t.Errorf("state_dir %s is not on the PVC %s", cfg.Watch.StateDir, m.pvc.Name)
	}
	if slices.ContainsFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool {
		return path.Clean(vm.MountPath) == path.Clean(cfg.Watch.StateDir) && vm.ReadOnly
	}) {
		t.Errorf("state_dir is mounted read-only")
	}

	// Probes: liveness /healthz, readiness /readyz, on the listen port.
	_, port, err := net.SplitHostPort(cfg.Watch.Listen)
	if err != nil {
		t.Fatalf("watch.listen %q: %v", cfg.Watch.Listen, err)
	}
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", c.LivenessProbe, "/healthz"},
		{"readiness", c.ReadinessProbe, "/readyz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s probe over HTTP", p.name)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe on %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := containerPort(c, p.probe.HTTPGet.Port); strconv.Itoa(int(got)) != port {
			t.Errorf("%s probe on port %v (%d), want watch.listen's %s", p.name, p.probe.HTTPGet.Port.String(), got, port)
		}
	}
}

// containerPort resolves a port by number or name.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// k8sConfig loads the ConfigMap's twice.yaml with twice's own strict
// loader.
func k8sConfig(t *testing.T, m *k8sManifests) *config.Config {
	t.Helper()
	data, ok := m.configMap.Data["twice.yaml"]
	if !ok {
		t.Fatal("ConfigMap has no twice.yaml")
	}
	cfg, err := config.Parse("deploy/k8s/configmap.yaml: twice.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestK8sConfigLoads(t *testing.T) {
	m := loadK8s(t)
	cfg := k8sConfig(t, m)
	if len(cfg.Sources) == 0 {
		t.Error("the ConfigMap's twice.yaml has no source")
	}
	if cfg.Watch.Listen == "" || strings.HasPrefix(cfg.Watch.Listen, "127.0.0.1:") {
		t.Errorf("watch.listen %q: probes and the Service cannot reach it from outside the pod", cfg.Watch.Listen)
	}
	if !filepath.IsAbs(cfg.Watch.StateDir) {
		t.Errorf("state_dir %q, want an absolute path (the PVC's mount)", cfg.Watch.StateDir)
	}
}

func TestK8sPVC(t *testing.T) {
	m := loadK8s(t)
	if !slices.Contains(m.pvc.Spec.AccessModes, corev1.ReadWriteOnce) {
		t.Errorf("access modes %v, want ReadWriteOnce", m.pvc.Spec.AccessModes)
	}
	if m.pvc.Spec.Resources.Requests.Storage().IsZero() {
		t.Error("no storage request")
	}
}

// TestK8sServiceAndMonitor: the Service selects the pod and exposes its
// http port; the ServiceMonitor selects the Service and scrapes /metrics
// on that port.
func TestK8sServiceAndMonitor(t *testing.T) {
	m := loadK8s(t)
	pod := m.deployment.Spec.Template
	c := pod.Spec.Containers[0]
	if len(m.service.Spec.Selector) == 0 {
		t.Fatal("the Service selects nothing")
	}
	for k, v := range m.service.Spec.Selector {
		if pod.Labels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
		}
	}
	var portName string
	for _, p := range m.service.Spec.Ports {
		if containerPort(c, p.TargetPort) == 8080 {
			portName = p.Name
		}
	}
	if portName == "" {
		t.Fatalf("the Service has no port to the container's 8080: %+v", m.service.Spec.Ports)
	}
	sm := m.serviceMonitor
	for k, v := range sm.Spec.Selector.MatchLabels {
		if m.service.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service's labels %v", k, v, m.service.Labels)
		}
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Error("the ServiceMonitor selects every Service")
	}
	if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != portName ||
		sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Fatalf("ServiceMonitor endpoints %+v, want port %s path /metrics", sm.Spec.Endpoints, portName)
	}

	// The API token: the pod reads it from the twice-api Secret, and
	// Prometheus sends the same one.
	var secret string
	for _, e := range c.Env {
		if e.Name == "TWICE_API_TOKEN" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			secret = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	if secret == "" {
		t.Fatalf("the container has no TWICE_API_TOKEN from a Secret: %+v", c.Env)
	}
	auth := sm.Spec.Endpoints[0].Authorization
	if auth == nil || auth.Credentials == nil || auth.Credentials.Name+"/"+auth.Credentials.Key != secret {
		t.Errorf("ServiceMonitor authorization %+v, want the Secret the pod reads (%s)", auth, secret)
	}
}

// TestK8sKustomization: kubectl apply -k deploy/k8s applies every
// manifest of the folder.
func TestK8sKustomization(t *testing.T) {
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yamlv3.Unmarshal(read(t, "k8s/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("k8s")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") && e.Name() != "kustomization.yaml" && !slices.Contains(k.Resources, e.Name()) {
			t.Errorf("kustomization.yaml does not list %s", e.Name())
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join("k8s", r)); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
	}
}
