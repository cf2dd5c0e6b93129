package stages_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDomainKnowsNoServices holds the domain packages to the layout of
// docs/architecture.md: stages, checks, reports, openqa and fedfind (and
// everything they import) know nothing of NATS, AMQP, HTTP serving or the
// listener. A one-shot `composeci check` then never links a message broker.
func TestDomainKnowsNoServices(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	domain := []string{"stages", "checks", "reports", "openqa", "fedfind"}
	const module = "github.com/composeci/composeci/"
	args := []string{"list", "-deps", "-json=ImportPath,Dir,GoFiles,Standard"}
	for _, p := range domain {
		args = append(args, module+p)
	}
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/nats-io/",                 // NATS and JetStream
		"github.com/rabbitmq/amqp091-go",      // AMQP
		module + "listener",                   // the service and its parts
		module + "web",                        // HTTP serving
		module + "internal/fakefedora",        // test doubles
		"net/http/httptest", "net/http/pprof", // serving in disguise
	}
	// HTTP clients are fine (fedfind, Koji, openQA are read over HTTP);
	// serving is not.
	serving := regexp.MustCompile(`\bhttp\.(Server\b|NewServeMux|ListenAndServe|Serve\(|Handle\(|HandleFunc\()`)
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for dec.More() {
		var p struct {
			ImportPath, Dir string
			GoFiles         []string
			Standard        bool
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		seen++
		for _, f := range forbidden {
			if strings.HasPrefix(p.ImportPath, f) {
				t.Errorf("a domain package depends on %s", p.ImportPath)
			}
		}
		if !strings.HasPrefix(p.ImportPath, module) {
			continue
		}
		for _, name := range p.GoFiles {
			src, err := os.ReadFile(filepath.Join(p.Dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if m := serving.Find(src); m != nil {
				t.Errorf("%s/%s serves HTTP (%s)", p.ImportPath, name, m)
			}
		}
	}
	if seen < len(domain) {
		t.Fatalf("go list named %d packages", seen)
	}
}
