// Package deploy_test validates the Kubernetes recipe in deploy/kubernetes:
//
//   - every manifest decodes strictly into the Kubernetes API's own Go types
//     (k8s.io/api, the types the API server decodes into): an unknown or
//     misspelt field, or a value of the wrong type, fails, as the API
//     server's strict field validation would;
//   - the embedded pushproxy configuration passes pushproxy's own strict
//     configuration parser;
//   - the sidecar recipe's rules hold (native sidecar, probes, no subPath on
//     Secret and ConfigMap mounts, security context, resources, grace
//     period), see TestRecipe;
//   - when kubectl is installed, the README's Secret command produces a
//     Secret that fits the Deployment;
//   - when deploy/schema's npm packages are installed (npm ci --prefix
//     deploy/schema), the manifests are also validated against the
//     Kubernetes OpenAPI schemas compiled in the kubernetes-models package
//     (required fields, types, formats), by deploy/schema/validate.mjs.
package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	k8sjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/pushproxy/pushproxy/proxy"
)

const manifestDir = "kubernetes"

// manifest is one YAML document of one file.
type manifest struct {
	file  string
	index int
	kind  string
	name  string
	obj   any // *appsv1.Deployment, *corev1.ConfigMap, *corev1.Secret
}

func (m manifest) String() string { return fmt.Sprintf("%s#%d %s/%s", m.file, m.index, m.kind, m.name) }

// loadManifests decodes every document of every .yaml file under
// deploy/kubernetes strictly into its API type.
func loadManifests(t *testing.T) []manifest {
	t.Helper()
	var files []string
	err := filepath.WalkDir(manifestDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	var out []manifest
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for i := 0; ; i++ {
			var node yaml.Node
			if err := dec.Decode(&node); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s#%d: %v", f, i, err)
			}
			doc, err := yaml.Marshal(&node)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s#%d: %v", f, i, err)
				continue
			}
			m.file, m.index = f, i
			out = append(out, m)
		}
	}
	return out
}

// decodeStrict decodes one YAML document into the API type of its kind as
// the API server does with strict field validation: YAML read as kubectl
// reads it (sigs.k8s.io/yaml), then JSON decoded case-sensitively, refusing
// unknown and duplicate fields (sigs.k8s.io/json).
func decodeStrict(doc []byte) (manifest, error) {
	var plain any
	if err := yaml.Unmarshal(doc, &plain); err != nil {
		return manifest{}, err // yaml.v3 refuses duplicate keys
	}
	js, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		return manifest{}, err
	}
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return manifest{}, err
	}
	gvk := meta.APIVersion + "/" + meta.Kind
	var obj any
	switch gvk {
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Secret":
		obj = &corev1.Secret{}
	default:
		return manifest{}, fmt.Errorf("%s: not a kind this test knows; add its API type to decodeStrict", gvk)
	}
	strict, err := k8sjson.UnmarshalStrict(js, obj)
	if err != nil {
		return manifest{}, fmt.Errorf("%s does not match the Kubernetes API type: %w", gvk, err)
	}
	if len(strict) > 0 {
		return manifest{}, fmt.Errorf("%s does not match the Kubernetes API type: %w", gvk, errors.Join(strict...))
	}
	if meta.Metadata.Name == "" {
		return manifest{}, fmt.Errorf("%s without metadata.name", gvk)
	}
	return manifest{kind: meta.Kind, name: meta.Metadata.Name, obj: obj}, nil
}

func TestManifestsDecodeStrictly(t *testing.T) {
	ms := loadManifests(t)
	kinds := map[string]int{}
	for _, m := range ms {
		kinds[m.kind]++
	}
	if kinds["Deployment"] != 1 || kinds["ConfigMap"] != 1 || kinds["Secret"] != 3 {
		t.Errorf("kinds %v, want 1 Deployment, 1 ConfigMap, 3 Secrets (APNs, VAPID, FCM)", kinds)
	}
	// The decoder refuses what the API server would: prove it on mutants.
	head := "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
	for name, doc := range map[string]string{
		"misspelt (case)": head + "spec: {template: {spec: {initContainers: [{name: p, restartpolicy: Always}]}}}\n",
		"unknown field":   head + "spec: {template: {spec: {volumes: [{name: v, secret: {secretName: s, subpath: x}}]}}}\n",
		"wrong type":      head + "spec: {replicas: two}\n",
		"duplicate field": head + "spec: {replicas: 1, replicas: 2}\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Octal modes are read as kubectl reads them.
	r := loadRecipe(t)
	for _, v := range r.dep.Spec.Template.Spec.Volumes {
		if v.Secret != nil && (v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o440) {
			t.Errorf("volume %s: defaultMode %v, want 0440", v.Name, v.Secret.DefaultMode)
		}
	}
}

// recipe is the Deployment, its pushproxy sidecar and the configuration.
type recipe struct {
	dep     *appsv1.Deployment
	sidecar *corev1.Container
	cm      *corev1.ConfigMap
	cfg     *proxy.Config
	secrets map[string]*corev1.Secret
}

func loadRecipe(t *testing.T) recipe {
	t.Helper()
	r := recipe{secrets: map[string]*corev1.Secret{}}
	for _, m := range loadManifests(t) {
		switch o := m.obj.(type) {
		case *appsv1.Deployment:
			r.dep = o
		case *corev1.ConfigMap:
			r.cm = o
		case *corev1.Secret:
			r.secrets[o.Name] = o
		}
	}
	if r.dep == nil || r.cm == nil {
		t.Fatal("the recipe needs a Deployment and a ConfigMap")
	}
	spec := &r.dep.Spec.Template.Spec
	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == "pushproxy" {
			r.sidecar = &spec.InitContainers[i]
		}
	}
	if r.sidecar == nil {
		t.Fatal("no initContainers entry named pushproxy (the native sidecar)")
	}
	text, ok := r.cm.Data["config.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no config.yaml")
	}
	cfg, err := proxy.ParseConfig([]byte(text))
	if err != nil {
		t.Fatalf("the ConfigMap's config.yaml is refused by pushproxy: %v", err)
	}
	r.cfg = cfg
	return r
}

func TestRecipe(t *testing.T) {
	r := loadRecipe(t)
	spec := &r.dep.Spec.Template.Spec
	sc := r.sidecar

	t.Run("native sidecar", func(t *testing.T) {
		if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Error("the pushproxy initContainer needs restartPolicy: Always (a native sidecar)")
		}
		for _, c := range spec.Containers {
			if strings.Contains(c.Image, "pushproxy") {
				t.Errorf("container %s runs pushproxy as a regular container: make it a native sidecar", c.Name)
			}
		}
		if len(spec.Containers) == 0 {
			t.Error("no application container")
		}
		if !slices.Equal(sc.Args[:1], []string{"serve"}) || !slices.Contains(sc.Args, "--config") {
			t.Errorf("args %q: want serve --config FILE", sc.Args)
		}
	})

	// The configuration file named in args comes from the ConfigMap.
	t.Run("configuration mounted", func(t *testing.T) {
		i := slices.Index(sc.Args, "--config")
		if i < 0 || i+1 >= len(sc.Args) {
			t.Fatalf("args %q", sc.Args)
		}
		path := sc.Args[i+1]
		vol, mount := volumeFor(spec, sc, path)
		if vol == nil || vol.ConfigMap == nil || vol.ConfigMap.Name != r.cm.Name || filepath.Base(path) != "config.yaml" ||
			filepath.Dir(path) != filepath.Clean(mount.MountPath) {
			t.Errorf("%s is not the config.yaml of ConfigMap %s mounted as a volume", path, r.cm.Name)
		}
	})

	t.Run("no subPath, read-only", func(t *testing.T) {
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			for _, m := range c.VolumeMounts {
				v := volumeNamed(spec, m.Name)
				if v == nil {
					t.Errorf("%s mounts unknown volume %s", c.Name, m.Name)
					continue
				}
				if v.Secret == nil && v.ConfigMap == nil && v.Projected == nil {
					continue
				}
				if m.SubPath != "" || m.SubPathExpr != "" {
					t.Errorf("%s mounts %s with subPath: a subPath mount never sees an updated Secret or ConfigMap", c.Name, m.Name)
				}
				if !m.ReadOnly {
					t.Errorf("%s mounts %s writable; mount Secrets and ConfigMaps readOnly", c.Name, m.Name)
				}
			}
		}
	})

	t.Run("credentials mounted", func(t *testing.T) {
		for _, a := range r.cfg.APNs {
			vol, _ := volumeFor(spec, sc, a.KeyFile)
			if vol == nil || vol.Secret == nil {
				t.Errorf("apns %s: key_file %s is not in a Secret volume of the sidecar", a.Name, a.KeyFile)
				continue
			}
			if vol.Secret.DefaultMode == nil || *vol.Secret.DefaultMode&0o007 != 0 {
				t.Errorf("Secret volume %s: set defaultMode 0400 or 0440 (no access for others)", vol.Name)
			}
			// The example Secret has exactly one file the pattern matches.
			if s := r.secrets[vol.Secret.SecretName]; s != nil {
				n := 0
				for k := range s.StringData {
					if ok, _ := filepath.Match(filepath.Base(a.KeyFile), k); ok {
						n++
					}
				}
				if n != 1 {
					t.Errorf("example Secret %s: %d files match key_file %s, want 1", s.Name, n, a.KeyFile)
				}
			} else {
				t.Errorf("no example Secret named %s", vol.Secret.SecretName)
			}
		}
		var vapid bool
		for _, v := range spec.Volumes {
			if v.Secret != nil && strings.Contains(v.Secret.SecretName, "vapid") {
				vapid = true
			}
		}
		if !vapid {
			t.Error("no volume for the VAPID keys' Secret")
		}
	})

	// FCM is commented out in the ConfigMap until its Secret holds a real
	// key: uncommented, the block must parse, and each service-account file
	// must be a file of the example Secret mounted in the sidecar.
	t.Run("fcm mounted", func(t *testing.T) {
		text := r.cm.Data["config.yaml"]
		var lines []string
		in := false
		for _, l := range strings.Split(text, "\n") {
			switch {
			case strings.HasPrefix(l, "# fcm:"):
				in = true
				lines = append(lines, strings.TrimPrefix(l, "# "))
			case in && strings.HasPrefix(l, "#   "):
				lines = append(lines, strings.TrimPrefix(l, "# "))
			default:
				in = false
			}
		}
		if len(lines) == 0 {
			t.Fatal("no commented fcm: block in the ConfigMap")
		}
		cfg, err := proxy.ParseConfig([]byte(strings.Join(lines, "\n") + "\n"))
		if err != nil || len(cfg.FCM) == 0 {
			t.Fatalf("the ConfigMap's fcm block, uncommented, is refused: %v", err)
		}
		for _, f := range cfg.FCM {
			vol, _ := volumeFor(spec, sc, f.ServiceAccountFile)
			if vol == nil || vol.Secret == nil {
				t.Errorf("fcm %s: service_account_file %s is not in a Secret volume of the sidecar", f.Name, f.ServiceAccountFile)
				continue
			}
			if vol.Secret.Optional == nil || !*vol.Secret.Optional {
				t.Errorf("Secret volume %s: make it optional (the pod starts without FCM, like Web Push)", vol.Name)
			}
			s := r.secrets[vol.Secret.SecretName]
			if s == nil {
				t.Errorf("no example Secret named %s", vol.Secret.SecretName)
			} else if _, ok := s.StringData[filepath.Base(f.ServiceAccountFile)]; !ok {
				t.Errorf("example Secret %s has no %s", s.Name, filepath.Base(f.ServiceAccountFile))
			}
		}
	})

	t.Run("probes", func(t *testing.T) {
		loopback := strings.HasPrefix(r.cfg.Listen, "127.") || strings.HasPrefix(r.cfg.Listen, "localhost:") ||
			strings.HasPrefix(r.cfg.Listen, "[::1]") || strings.HasPrefix(r.cfg.Listen, "unix://")
		check := func(name string, p *corev1.Probe, path string) {
			t.Helper()
			if p == nil {
				t.Errorf("%s probe missing", name)
				return
			}
			if p.TimeoutSeconds < 2 {
				t.Errorf("%s probe: timeoutSeconds %d leaves the health check (2s timeout) no room", name, p.TimeoutSeconds)
			}
			switch {
			case p.HTTPGet != nil:
				if loopback {
					t.Errorf("%s probe: httpGet goes to the pod IP, but pushproxy listens on %s", name, r.cfg.Listen)
				}
				if p.HTTPGet.Path != path {
					t.Errorf("%s probe: path %s, want %s", name, p.HTTPGet.Path, path)
				}
			case p.Exec != nil:
				cmd := p.Exec.Command
				if len(cmd) < 2 || filepath.Base(cmd[0]) != "pushproxy" || cmd[1] != "healthcheck" {
					t.Errorf("%s probe: %q, want the binary's own healthcheck (the image has no shell)", name, cmd)
				}
				if live := slices.Contains(cmd, "--live"); live != (path == "/healthz") {
					t.Errorf("%s probe %q: --live (GET /healthz) must be used for liveness only, /readyz otherwise", name, cmd)
				}
				if slices.Contains(cmd, "--config") {
					t.Errorf("%s probe %q: use --url, so that a bad ConfigMap update does not fail the probe of a running process", name, cmd)
				}
				if i := slices.Index(cmd, "--url"); i >= 0 && (i+1 >= len(cmd) || !strings.Contains(cmd[i+1], r.cfg.Listen)) {
					t.Errorf("%s probe %q: the URL does not name the listen address %s", name, cmd, r.cfg.Listen)
				}
			default:
				t.Errorf("%s probe: neither exec nor httpGet", name)
			}
		}
		check("startup", sc.StartupProbe, "/readyz")
		check("readiness", sc.ReadinessProbe, "/readyz")
		check("liveness", sc.LivenessProbe, "/healthz")
		if p := sc.StartupProbe; p != nil && time.Duration(p.PeriodSeconds*p.FailureThreshold)*time.Second < 30*time.Second {
			t.Errorf("startup probe allows only %ds", p.PeriodSeconds*p.FailureThreshold)
		}
	})

	t.Run("resources", func(t *testing.T) {
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			req, lim := c.Resources.Requests, c.Resources.Limits
			if req.Cpu().IsZero() || req.Memory().IsZero() {
				t.Errorf("%s: set cpu and memory requests", c.Name)
			}
			if lim.Memory().IsZero() {
				t.Errorf("%s: set a memory limit", c.Name)
			} else if lim.Memory().Cmp(*req.Memory()) < 0 {
				t.Errorf("%s: memory limit below the request", c.Name)
			}
		}
		if m := sc.Resources.Limits.Memory(); m.Value() < 100<<20 {
			t.Errorf("pushproxy memory limit %s is under the 100 MiB it may use with 1,000 notifications in flight", m)
		}
	})

	t.Run("security context", func(t *testing.T) {
		pod := spec.SecurityContext
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			s := c.SecurityContext
			if s == nil {
				t.Errorf("%s: no securityContext", c.Name)
				continue
			}
			nonRoot := (s.RunAsNonRoot != nil && *s.RunAsNonRoot) || (s.RunAsNonRoot == nil && pod != nil && pod.RunAsNonRoot != nil && *pod.RunAsNonRoot)
			if !nonRoot {
				t.Errorf("%s: runAsNonRoot is not true", c.Name)
			}
			if s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
				t.Errorf("%s: readOnlyRootFilesystem is not true", c.Name)
			}
			if s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", c.Name)
			}
			if s.Privileged != nil && *s.Privileged {
				t.Errorf("%s: privileged", c.Name)
			}
			if s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") || len(s.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities must drop ALL and add none", c.Name)
			}
			seccomp := s.SeccompProfile
			if seccomp == nil && pod != nil {
				seccomp = pod.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: seccompProfile is not RuntimeDefault", c.Name)
			}
		}
	})

	t.Run("grace period", func(t *testing.T) {
		tg := spec.TerminationGracePeriodSeconds
		if tg == nil {
			t.Fatal("terminationGracePeriodSeconds is not set (the default 30s is not derived from shutdown_grace)")
		}
		if time.Duration(*tg)*time.Second < r.cfg.ShutdownGrace+5*time.Second {
			t.Errorf("terminationGracePeriodSeconds %d is not above shutdown_grace %s (with a margin)", *tg, r.cfg.ShutdownGrace)
		}
	})

	t.Run("images pinned", func(t *testing.T) {
		for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
			if !strings.Contains(c.Image, ":") || strings.HasSuffix(c.Image, ":latest") {
				t.Errorf("%s: image %q is not pinned to a version", c.Name, c.Image)
			}
		}
	})
}

func volumeNamed(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// volumeFor returns the volume and mount of container c that holds path.
func volumeFor(spec *corev1.PodSpec, c *corev1.Container, path string) (*corev1.Volume, *corev1.VolumeMount) {
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		dir := filepath.Clean(m.MountPath)
		if strings.HasPrefix(filepath.Clean(path), dir+"/") {
			return volumeNamed(spec, m.Name), m
		}
	}
	return nil, nil
}

// TestRotationCommand runs the README's Secret command (client side only:
// --dry-run=client needs no cluster) and checks that its output is a Secret
// the Deployment mounts, holding a file its key_file pattern matches.
func TestRotationCommand(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(manifestDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "--dry-run=client -o yaml | kubectl apply -f -") {
		t.Error("the README does not show the kubectl create secret … --dry-run=client -o yaml | kubectl apply -f - rotation")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed")
	}
	r := loadRecipe(t)
	vol, _ := volumeFor(&r.dep.Spec.Template.Spec, r.sidecar, r.cfg.APNs[0].KeyFile)
	if vol == nil || vol.Secret == nil {
		t.Fatal("no Secret volume for the APNs key")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "AuthKey_NEWKEY1234.p8")
	if err := os.WriteFile(keyFile, []byte("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(kubectl, "create", "secret", "generic", vol.Secret.SecretName,
		"--from-file=AuthKey_NEWKEY1234.p8="+keyFile, "--dry-run=client", "-o", "yaml")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+filepath.Join(dir, "no-kubeconfig"))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl: %v: %s", err, out)
	}
	m, err := decodeStrict(out)
	if err != nil {
		t.Fatal(err)
	}
	s := m.obj.(*corev1.Secret)
	if s.Name != vol.Secret.SecretName || len(s.Data) != 1 {
		t.Errorf("kubectl made %s with %d keys", s.Name, len(s.Data))
	}
	for k := range s.Data {
		if ok, _ := filepath.Match(filepath.Base(r.cfg.APNs[0].KeyFile), k); !ok {
			t.Errorf("the new Secret's file %s does not match key_file %s", k, r.cfg.APNs[0].KeyFile)
		}
	}
}

// TestSchemas validates the manifests against the Kubernetes OpenAPI
// schemas (npm kubernetes-models), when deploy/schema is installed.
func TestSchemas(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join("schema", "node_modules", "kubernetes-models")); err != nil {
		t.Skip("run `npm ci --prefix deploy/schema` to validate against the Kubernetes schemas")
	}
	var files []string
	_ = filepath.WalkDir(manifestDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	cmd := exec.Command(node, append([]string{filepath.Join("schema", "validate.mjs")}, files...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("schema validation failed: %v", err)
	}
}
