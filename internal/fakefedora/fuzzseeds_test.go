package fakefedora_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/internal/fakefedora"
	"github.com/composeci/composeci/internal/httpclient"
	"github.com/composeci/composeci/openqa"
)

var updateSeeds = flag.Bool("update", false, "rewrite the fuzz seed corpora made from the fakes' answers")

// The fuzz targets' seed corpora (testdata/fuzz/FuzzXxx/fakefedora-* in
// the packages that parse remote input) are what the fakes answer, in the
// real wire formats: Fedora Messaging bodies, openQA job pages with their
// Link headers, a Koji hub's XML-RPC answers, release.json. They are made
// here, on a fixed clock, so a change of a fake's format shows as a
// difference; `go test ./internal/fakefedora -run TestFuzzSeeds -update`
// writes them again.
func TestFuzzSeeds(t *testing.T) {
	seeds := map[string][]any{} // path from the module root -> values
	add := func(dir, target, name string, values ...any) {
		seeds[filepath.Join(dir, "testdata", "fuzz", target, "fakefedora-"+name)] = values
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	busSeeds(add)
	openQASeeds(t, now, add)
	kojiSeeds(t, now, add)
	releaseSeeds(t, add)

	root := filepath.Join("..", "..")
	for path, values := range seeds {
		want := fuzzFile(values...)
		full := filepath.Join(root, path)
		if *updateSeeds {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(full, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(full)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s is not the fake's answer (%v): run go test ./internal/fakefedora -run TestFuzzSeeds -update", path, err)
		}
	}
}

// fuzzFile formats values as a corpus file of go test's fuzzing.
func fuzzFile(values ...any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, v := range values {
		switch x := v.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(x)))
		case string:
			fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(x))
		case int:
			fmt.Fprintf(&b, "int(%d)\n", x)
		case int64:
			fmt.Fprintf(&b, "int64(%d)\n", x)
		case bool:
			fmt.Fprintf(&b, "bool(%t)\n", x)
		default:
			panic(fmt.Sprintf("no corpus form for %T", v))
		}
	}
	return []byte(b.String())
}

type addSeed func(dir, target, name string, values ...any)

// busSeeds: Pungi's and openQA's messages as the fake bus sends them, for
// the consumer's decoder (FuzzDecode) and, as the events they make, for
// the engine's reading of events (FuzzEventJSON).
func busSeeds(add addSeed) {
	const rawhide = "https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-Rawhide-20261122.n.0/compose"
	for i, m := range []struct{ id, status, location, sentAt string }{
		{"Fedora-Rawhide-20261122.n.0", "FINISHED", rawhide, "2026-11-22T07:59:58+00:00"},
		{"Fedora-Rawhide-20261122.n.0", "STARTED", "", "2026-11-22T04:00:00+00:00"},
		{"Fedora-45-20261122.n.0", "FINISHED_INCOMPLETE", "https://kojipkgs.fedoraproject.org/compose/branched/Fedora-45-20261122.n.0/compose", "2026-11-22T07:00:00+00:00"},
		{"Fedora-44-20261010.1", "DOOMED", "", "2026-10-10T12:00:00+00:00"},
		{"Fedora-eln-20261122.n.0", "FINISHED", "", "2026-11-22T06:00:00+00:00"},
	} {
		body, _ := json.Marshal(fakefedora.ComposeStatusBody(m.id, m.status, m.location))
		add("listener/fedmsg", "FuzzDecode", fmt.Sprintf("status-%d", i), fakefedora.BusTopicComposeStatus, body, "utf-8", m.sentAt, false, int64(0))
		ev := map[string]any{"kind": "compose.status", "compose_id": m.id, "status": m.status, "source": "amqp",
			"message_id": fmt.Sprintf("5b8d4a9e-1f2c-4b6a-9d3e-7c1a2b3c4d%02d", i), "topic": fakefedora.BusTopicComposeStatus,
			"at": strings.Replace(m.sentAt, "+00:00", "Z", 1)}
		if m.location != "" {
			ev["location"] = m.location
		}
		evb, _ := json.Marshal(ev)
		add("listener/event", "FuzzEventJSON", fmt.Sprintf("status-%d", i), evb)
	}
	for i, j := range []fakefedora.JobDone{
		{ID: 1, Result: "passed", Build: "Fedora-Rawhide-20261122.n.0", Test: "install_default", Arch: "x86_64", Machine: "64bit", Flavor: "Server-dvd-iso", GroupID: 1, Remaining: 20},
		{ID: 7, Result: "failed", Reason: "backend died", Build: "Fedora-44-20261122.n.0", Test: "base_selinux", Arch: "aarch64", Machine: "aarch64", Flavor: "universal", Bugref: "1234", BugURL: "https://bugzilla.redhat.com/1234"},
		{ID: 9, Result: "softfailed", Build: "Update-FEDORA-2026-abc", Test: "base_update_cli", Arch: "x86_64", Machine: "64bit", Flavor: "updates-server"},
	} {
		body, _ := json.Marshal(fakefedora.JobDoneBody(j))
		add("listener/fedmsg", "FuzzDecode", fmt.Sprintf("jobdone-%d", i), fakefedora.BusTopicJobDone, body, "utf-8", "2026-11-22T07:00:00Z", false, int64(0))
	}
}

// openQASeeds: the pages of a Rawhide nightly's jobs, some failed and one
// restarted, read 8 at a time with openQA's Link headers (FuzzResults).
func openQASeeds(t *testing.T, now time.Time, add addSeed) {
	clock := func() time.Time { return now }
	srv := fakefedora.NewOpenQA(fakefedora.OpenQAOptions{Now: clock,
		Keys: []fakefedora.OpenQAKey{{Key: "0123456789ABCDEF", Secret: "FEDCBA9876543210", Operator: true}}})
	defer srv.Close()
	c, err := openqa.New(openqa.Options{BaseURL: srv.URL(), Now: clock, RecheckDelay: -1,
		Credentials: openqa.Credentials{Key: "0123456789ABCDEF", Secret: "FEDCBA9876543210"},
		HTTP:        httpclient.Options{RetryMax: -1}})
	if err != nil {
		t.Fatal(err)
	}
	const id = "Fedora-Rawhide-20261122.n.0"
	const loc = "https://kojipkgs.fedoraproject.org/compose/rawhide/" + id + "/compose"
	img := func(variant, subvariant, typ, format, arch, path string) fedfind.Image {
		return fedfind.Image{Variant: variant, Subvariant: subvariant, Type: typ, Format: format, Arch: arch, Path: path,
			URL: loc + "/" + path, Identity: fedfind.Identity(subvariant, typ, format)}
	}
	comp := openqa.Compose{ID: id, Version: "Rawhide", Location: loc, HasGenericTree: true, Images: []fedfind.Image{
		img("Everything", "Everything", "boot", "iso", "x86_64", "Everything/x86_64/iso/Fedora-Everything-netinst-x86_64-Rawhide-20261122.n.0.iso"),
		img("Server", "Server", "dvd", "iso", "x86_64", "Server/x86_64/iso/Fedora-Server-dvd-x86_64-Rawhide-20261122.n.0.iso"),
		img("Workstation", "Workstation", "live", "iso", "x86_64", "Workstation/x86_64/iso/Fedora-Workstation-Live-x86_64-Rawhide-20261122.n.0.iso"),
	}}
	if _, err := c.Schedule(context.Background(), comp, openqa.ScheduleOptions{}); err != nil {
		t.Fatal(err)
	}
	jobs := srv.Jobs()
	if len(jobs) < 4 {
		t.Fatalf("%d jobs scheduled", len(jobs))
	}
	srv.SetOutcome(id, jobs[1].Flavor(), jobs[1].Arch(), jobs[1].Test, "failed")
	srv.SetOutcome(id, jobs[2].Flavor(), jobs[2].Arch(), jobs[2].Test, "incomplete", "passed")
	srv.Settle()
	if _, err := srv.Restart(jobs[3].ID); err != nil {
		t.Fatal(err)
	}
	next := srv.URL() + "/api/v1/jobs?build=" + id + "&limit=8&offset=0"
	for page := 0; next != ""; page++ {
		resp, err := http.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: %d, %v", page, resp.StatusCode, err)
		}
		link := resp.Header.Get("Link")
		norm := func(s string) string { return strings.ReplaceAll(s, srv.URL(), "https://openqa.example") }
		add("openqa", "FuzzResults", fmt.Sprintf("rawhide-page-%d", page), []byte(norm(string(body))), 200, resp.Header.Get("Content-Type"), norm(link))
		next = ""
		for _, part := range strings.Split(link, ",") {
			if strings.Contains(part, `rel="next"`) {
				next = strings.Trim(strings.TrimSpace(strings.Split(part, ";")[0]), "<>")
			}
		}
		if page > 20 {
			t.Fatal("paging does not end")
		}
	}
}

// kojiSeeds: a Koji hub's XML-RPC answers — a listTasks of image tasks, a
// multicall, a fault — for the response decoder (FuzzDecodeResponse).
func kojiSeeds(t *testing.T, now time.Time, add addSeed) {
	hub := fakefedora.NewKojiHub(fakefedora.KojiHubOptions{Now: func() time.Time { return now }})
	for i, m := range []string{"kiwiBuild", "livemedia", "osbuildImage"} {
		hub.AddTask(fakefedora.KojiTask{Method: m, Arch: "noarch", Owner: "releng", Created: now.Add(-time.Duration(i+1) * time.Hour),
			Request: []any{"rawhide", []any{"x86_64", "aarch64"}, map[string]any{"release": "20261122.n.0", "optional_arches": []any{"aarch64"}}},
			Channel: 12, Priority: 20, Weight: 4.0})
	}
	call := func(name, body string) {
		rec := httptest.NewRecorder()
		hub.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/kojihub", strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: HTTP %d", name, rec.Code)
		}
		add("fedfind/koji", "FuzzDecodeResponse", name, rec.Body.Bytes())
	}
	call("listTasks", `<?xml version='1.0'?><methodCall><methodName>listTasks</methodName><params><param><value><struct>`+
		`<member><name>method</name><value><string>kiwiBuild</string></value></member></struct></value></param></params></methodCall>`)
	call("multicall", `<?xml version='1.0'?><methodCall><methodName>system.multicall</methodName><params><param><value><array><data>`+
		`<value><struct><member><name>methodName</name><value><string>getTaskInfo</string></value></member>`+
		`<member><name>params</name><value><array><data><value><int>1</int></value></data></array></value></member></struct></value>`+
		`<value><struct><member><name>methodName</name><value><string>noSuchMethod</string></value></member>`+
		`<member><name>params</name><value><array><data></data></array></value></member></struct></value>`+
		`</data></array></value></param></params></methodCall>`)
	call("fault", `<?xml version='1.0'?><methodCall><methodName>noSuchMethod</methodName><params></params></methodCall>`)
}

// releaseSeeds: Fedora QA's release.json (FuzzParseReleaseData).
func releaseSeeds(t *testing.T, add addSeed) {
	for name, rel := range map[string][2][]int{"branched": {{42, 43}, {44}}, "no-branched": {{43}, {}}} {
		d := fakefedora.NewReleaseData(rel[0], rel[1])
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fakefedora.ReleaseDataPath, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("release.json: HTTP %d", rec.Code)
		}
		add("fedfind", "FuzzParseReleaseData", name, rec.Body.Bytes())
	}
}
