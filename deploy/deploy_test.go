// Package deploy holds the container image, the Helm chart and the Grafana
// dashboard; its tests render and validate them offline.
package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/sluicedata/sluice/config"
)

func helm(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SLUICE_HELM"); p != "" {
		return p
	}
	if p, err := filepath.Abs("../.tools/helm"); err == nil {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	if os.Getenv("SLUICE_REQUIRE_TOOLS") != "" {
		t.Fatal("helm not found (SLUICE_REQUIRE_TOOLS is set): run make tools")
	}
	t.Skip("helm not found: run make tools")
	return ""
}

func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", filepath.Base(bin), strings.Join(args, " "), err, out, stderr.String())
	}
	return out
}

// strict decodes a YAML document into v, failing on any field v lacks.
func strict(t *testing.T, doc []byte, v any) {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%T does not accept the rendered manifest: %v\n%s", v, err, doc)
	}
}

// Minimal shapes of the two custom resources the chart renders, for strict
// decoding: only the fields the chart uses.
type serviceMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type scaledObject struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount int `json:"minReplicaCount"`
		MaxReplicaCount int `json:"maxReplicaCount"`
		Triggers        []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

func TestHelmChart(t *testing.T) {
	bin := helm(t)
	chart := "helm/sluice"
	for _, values := range []string{"", "helm/sluice/ci-full-values.yaml"} {
		name := "default"
		args := []string{}
		if values != "" {
			name = "full"
			args = append(args, "-f", values)
		}
		t.Run(name, func(t *testing.T) {
			run(t, bin, append([]string{"lint", "--strict", chart}, args...)...)
			out := run(t, bin, append([]string{"template", "t", chart, "--namespace", "data"}, args...)...)
			kinds := map[string]int{}
			var dep, collector appsv1.Deployment
			var cfg config.Config
			for _, doc := range bytes.Split(out, []byte("\n---")) {
				var head struct{ Kind string }
				if err := yaml.Unmarshal(doc, &head); err != nil || head.Kind == "" {
					continue
				}
				kinds[head.Kind]++
				switch head.Kind {
				case "Deployment":
					var d appsv1.Deployment
					strict(t, doc, &d)
					if d.Spec.Template.Spec.Containers[0].Args[0] == "collect" {
						collector = d
					} else {
						dep = d
					}
				case "ConfigMap":
					var cm corev1.ConfigMap
					strict(t, doc, &cm)
					// The chart's config passes sluice's own validation.
					c, err := config.Parse([]byte(cm.Data["sluice.yaml"]))
					if err != nil {
						t.Fatalf("rendered sluice.yaml: %v", err)
					}
					if err := c.Validate(); err != nil {
						t.Fatalf("rendered sluice.yaml is invalid: %v", err)
					}
					if err := c.ValidateCollect(); err != nil {
						t.Fatalf("rendered sluice.yaml is invalid for collect: %v", err)
					}
					cfg = c
				case "Service":
					strict(t, doc, &corev1.Service{})
				case "ServiceAccount":
					strict(t, doc, &corev1.ServiceAccount{})
				case "PodDisruptionBudget":
					strict(t, doc, &policyv1.PodDisruptionBudget{})
				case "HorizontalPodAutoscaler":
					strict(t, doc, &autoscalingv2.HorizontalPodAutoscaler{})
				case "ServiceMonitor":
					strict(t, doc, &serviceMonitor{})
				case "ScaledObject":
					strict(t, doc, &scaledObject{})
				default:
					t.Errorf("unexpected kind %s", head.Kind)
				}
			}
			for _, k := range []string{"Deployment", "ConfigMap", "Service", "ServiceAccount", "PodDisruptionBudget"} {
				want := 1
				if name == "full" && (k == "Deployment" || k == "Service") {
					want = 2 // and the collector's
				}
				if kinds[k] != want {
					t.Errorf("%d %s, want %d", kinds[k], k, want)
				}
			}
			if name == "full" {
				c := collector.Spec.Template.Spec
				if len(c.Containers) != 1 || c.Containers[0].Ports[0].ContainerPort != 8080 || *collector.Spec.Replicas != 3 {
					t.Errorf("collector deployment %+v", c)
				}
				sel := collector.Spec.Selector.MatchLabels["app.kubernetes.io/name"]
				if sel == dep.Spec.Selector.MatchLabels["app.kubernetes.io/name"] {
					t.Error("the collector's pods would match the pipeline's selectors")
				}
			}
			if name == "full" && (kinds["ServiceMonitor"] != 1 || kinds["ScaledObject"] != 1) {
				t.Errorf("full values: kinds %v", kinds)
			}
			c := dep.Spec.Template.Spec.Containers[0]
			if c.LivenessProbe.HTTPGet.Path != "/livez" || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Error("probes must use /livez and /readyz")
			}
			grace := time.Duration(*dep.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
			if grace <= cfg.ShutdownTimeout.D() {
				t.Errorf("terminationGracePeriodSeconds %s must exceed shutdown_timeout %s", grace, cfg.ShutdownTimeout.D())
			}
			if sc := dep.Spec.Template.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
				t.Error("the pod must run as non-root")
			}
			if fmt.Sprint(c.Ports[0].ContainerPort) != strings.Split(cfg.Observability.Listen, ":")[1] {
				t.Errorf("container port %d vs listen %s", c.Ports[0].ContainerPort, cfg.Observability.Listen)
			}
		})
	}
}
