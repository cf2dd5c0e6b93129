package fedfind

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// golden compares got (as indented JSON) with testdata/golden/<name>.json,
// rewriting it with -update.
func golden(t *testing.T, name string, got any) {
	t.Helper()
	b, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", "golden", name+".json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./fedfind -update to create it)", err)
	}
	if !bytes.Equal(want, b) {
		t.Errorf("%s differs from golden file %s:\n got: %s\nwant: %s", name, path, b, want)
	}
}

func openTestdata(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestParseImagesGolden(t *testing.T) {
	for _, name := range []string{
		"images-rawhide-1.2.json",          // every field; boot->dvd-ostree fix; unknown type and format kept
		"images-src-under-arches-1.2.json", // source media listed under two arches, read once
		"images-1.1-src-key.json",          // src arch key; missing format means iso; empty subvariant
		"images-1.0-no-type.json",          // format 1.0 has no header.type
		"images-empty.json",                // a variant with no arches is an empty set, not an error
	} {
		t.Run(name, func(t *testing.T) {
			f, err := ParseImages(openTestdata(t, name), name, "https://kojipkgs.example/compose/rawhide/X/compose")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(name, ".json"), f)
		})
	}
}

func TestParseImagesDetails(t *testing.T) {
	f, err := ParseImages(openTestdata(t, "images-rawhide-1.2.json"), "images.json", "https://h/compose/")
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]Image{}
	for _, im := range f.Images {
		byPath[im.Path] = im
	}
	sb := byPath["Silverblue/x86_64/iso/Fedora-Silverblue-ostree-x86_64-Rawhide-20261122.n.0.iso"]
	if sb.Type != "dvd-ostree" || sb.Identity != "Silverblue-dvd-ostree-iso" || sb.Flavor() != "Silverblue-dvd_ostree-iso" {
		t.Errorf("Pungi 417 fix not applied: %+v flavor %s", sb, sb.Flavor())
	}
	cloud := byPath["Cloud/x86_64/images/Fedora-Cloud-Base-Generic-Rawhide-20261122.n.0.x86_64.qcow2"]
	if cloud.URL != "https://h/compose/Cloud/x86_64/images/Fedora-Cloud-Base-Generic-Rawhide-20261122.n.0.x86_64.qcow2" {
		t.Errorf("URL = %q", cloud.URL)
	}
	if cloud.Flavor() != "Cloud_Base-qcow2-qcow2" {
		t.Errorf("flavor %q", cloud.Flavor())
	}
	if f.ID.String() != "Fedora-Rawhide-20261122.n.0" {
		t.Errorf("ID %v", f.ID)
	}
	if len(f.Images) != 7 {
		t.Errorf("got %d images, want 7", len(f.Images))
	}
}

func TestMetadataErrors(t *testing.T) {
	tests := []struct {
		file    string
		parse   func(f *os.File) error
		wantIs  error
		message string
	}{
		{"images-2.0.json", parseImagesFile, ErrUnsupportedFormat, "format 2.0"},
		{"images-0.3.json", parseImagesFile, ErrUnsupportedFormat, "legacy format 0.3"},
		{"images-wrong-type.json", parseImagesFile, nil, `header.type is "productmd.rpms", want "productmd.images"`},
		{"images-no-path.json", parseImagesFile, nil, "payload.images.Server.x86_64[0]: path is missing"},
		{"images-path-escape.json", parseImagesFile, nil, "leaves the compose directory"},
		{"images-bad-size.json", parseImagesFile, nil, `field "payload.images.size" has the wrong type`},
		{"images-truncated.json", parseImagesFile, nil, "truncated JSON"},
		{"composeinfo-empty-variant.json", parseComposeInfoFile, nil, `variant "Var1" lacks id, uid or type`},
		{"composeinfo-no-release.json", parseComposeInfoFile, nil, "payload.release is missing"},
		{"composeinfo-bad-id.json", parseComposeInfoFile, ErrInvalidInput, "payload.compose.id"},
		{"composeinfo-bad-label.json", parseComposeInfoFile, ErrInvalidInput, "payload.compose.label"},
		{"images-rawhide-1.2.json", parseComposeInfoFile, nil, `header.type is "productmd.images"`},
		{"rpms-2.0.json", streamRPMsFile, ErrUnsupportedFormat, "format 2.0"},
		{"rpms-truncated.json", streamRPMsFile, nil, "truncated JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			err := tt.parse(openTestdata(t, tt.file))
			if err == nil {
				t.Fatal("no error")
			}
			var me *MetadataError
			if !errors.As(err, &me) || me.File != tt.file {
				t.Errorf("error %v is not a MetadataError naming %s", err, tt.file)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
		})
	}
}

func parseImagesFile(f *os.File) error {
	_, err := ParseImages(f, filepath.Base(f.Name()), "")
	return err
}

func parseComposeInfoFile(f *os.File) error {
	_, err := ParseComposeInfo(f, filepath.Base(f.Name()))
	return err
}

func streamRPMsFile(f *os.File) error {
	_, err := StreamRPMs(f, filepath.Base(f.Name()), func(RPM) error { return nil })
	return err
}

func TestParseComposeInfoGolden(t *testing.T) {
	for _, name := range []string{"composeinfo-rawhide-1.2.json", "composeinfo-beta-1.2.json"} {
		t.Run(name, func(t *testing.T) {
			ci, err := ParseComposeInfo(openTestdata(t, name), name)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(name, ".json"), ci)
		})
	}
	ci, err := ParseComposeInfo(openTestdata(t, "composeinfo-beta-1.2.json"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if ci.Compose.Label != "Beta-1.2" || !ci.HasVariant("Everything") || ci.HasVariant("Server") || StreamOf(ci.ID).Kind != StreamProduction {
		t.Errorf("unexpected %+v", ci)
	}
}

func TestStreamRPMs(t *testing.T) {
	for _, name := range []string{"rpms-rawhide-1.2.json", "rpms-1.0.json", "rpms-header-last.json"} {
		t.Run(name, func(t *testing.T) {
			var got []RPM
			h, err := StreamRPMs(openTestdata(t, name), name, func(r RPM) error {
				got = append(got, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(name, ".json"), map[string]any{"header": h, "rpms": got})
		})
	}
	// A callback error stops the walk and comes back; ErrStop stops it quietly.
	n := 0
	_, err := StreamRPMs(openTestdata(t, "rpms-rawhide-1.2.json"), "r", func(RPM) error { n++; return ErrStop })
	if err != nil || n != 1 {
		t.Errorf("ErrStop: err %v after %d entries", err, n)
	}
	boom := errors.New("boom")
	_, err = StreamRPMs(openTestdata(t, "rpms-rawhide-1.2.json"), "r", func(RPM) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("callback error lost: %v", err)
	}
}

func TestParseStatus(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Status
		ok   bool
	}{
		{"FINISHED", StatusFinished, true},
		{"FINISHED_INCOMPLETE\n", StatusFinishedIncomplete, true},
		{"  STARTED \r\n", StatusStarted, true},
		{"NONSTANDARD_WORD\n", "NONSTANDARD_WORD", true},
		{"", "", false},
		{"<html><body>Not here</body></html>", "", false},
		{"FINISHED\nDOOMED\n", "", false},
		{"finished", "finished", true}, // nonstandard: not terminal
		{"FINISHED-INCOMPLETE", "FINISHED-INCOMPLETE", true},
		{"_FINISHED", "", false},
		{"FINISHED NOW", "", false},
		{"A" + strings.Repeat("_", 63), Status("A" + strings.Repeat("_", 63)), true},
		{strings.Repeat("A", 65), "", false},
		{"FINISHÉ", "", false},
	} {
		got, err := ParseStatus([]byte(tt.in), "STATUS")
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseStatus(%q) = %q, %v", tt.in, got, err)
		}
	}
	for _, b := range []string{"STATUS-no-newline", "STATUS-newline"} {
		raw, err := os.ReadFile(filepath.Join("testdata", b))
		if err != nil {
			t.Fatal(err)
		}
		if st, err := ParseStatus(raw, b); err != nil || !st.Success() || !st.Terminal() || st.Failed() {
			t.Errorf("%s: %q %v", b, st, err)
		}
	}
	if !StatusTerminated.Failed() || !StatusDoomed.Terminal() || StatusStarted.Terminal() || Status("WEIRD").Terminal() {
		t.Error("status predicates wrong")
	}
}

// TestStreamRPMsMalformed: whatever is wrong in rpms.json, the error names
// the file and says what and where.
func TestStreamRPMsMalformed(t *testing.T) {
	const head = `{"header": {"type": "productmd.rpms", "version": "1.2"}, "payload": {"compose": {"id": "Fedora-Rawhide-20261122.n.0", "date": "20261122", "respin": 0, "type": "nightly"}, "rpms": `
	entry := func(e string) string {
		return head + `{"Everything": {"x86_64": {"bash-0:5.2-1.fc44.src": {"bash-0:5.2-1.fc44.x86_64": ` + e + `}}}}}}`
	}
	for _, tt := range []struct {
		name, in, message string
	}{
		{"empty", ``, "truncated JSON"},
		{"not an object", `[1, 2]`, "top level: want a JSON object, got array"},
		{"no header", `{"payload": {}}`, "no header"},
		{"trailing data", `{"header": {"type": "productmd.rpms", "version": "1.2"}} {}`, "unexpected data after the top-level object"},
		{"bad syntax", head + `{"Everything": {"x86_64": {"bash-0:5.2-1.fc44.src" 5}}}}}`, "malformed JSON at byte"},
		{"rpms not an object", head + `[]}}`, "payload.rpms: want a JSON object, got array"},
		{"arch not an object", head + `{"Everything": {"x86_64": "none"}}}}`, "payload.rpms.Everything.x86_64: want a JSON object, got string"},
		{"group not an object", head + `{"Everything": {"x86_64": {"bash-0:5.2-1.fc44.src": null}}}}}`, "payload.rpms.Everything.x86_64.bash-0:5.2-1.fc44.src: want a JSON object, got null"},
		{"entry not an object", entry(`7`), "payload.rpms.Everything.x86_64.bash-0:5.2-1.fc44.src.bash-0:5.2-1.fc44.x86_64: want a JSON object, got number"},
		{"path missing", entry(`{"category": "binary", "sigkey": null}`), "bash-0:5.2-1.fc44.x86_64: path is missing"},
		{"path null", entry(`{"category": "binary", "path": null}`), "bash-0:5.2-1.fc44.x86_64: path is missing"},
		{"path a number", entry(`{"category": "binary", "path": 5}`), `field "path" has the wrong type (want string, got JSON number)`},
		{"sigkey an object", entry(`{"path": "p", "sigkey": {}}`), `field "sigkey" has the wrong type (want string, got JSON object)`},
		{"header of the wrong type", `{"header": {"type": "productmd.rpms", "version": 1.2}}`, `field "version" has the wrong type`},
		{"bad compose", `{"header": {"type": "productmd.rpms", "version": "1.2"}, "payload": {"compose": {"id": "nope"}}}`, "payload.compose.id"},
		{"unsupported", `{"header": {"type": "productmd.rpms", "version": "2.0"}, "payload": {}}`, "format 2.0"},
		{"invalid UTF-8", entry(`{"path": "` + "\xff" + `"}`), "malformed JSON"},
		{"truncated", entry(`{"path": "p"`)[:len(entry(`{"path": "p"`))-8], "truncated JSON"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := StreamRPMs(strings.NewReader(tt.in), "rpms.json", func(RPM) error { return nil })
			var me *MetadataError
			if !errors.As(err, &me) || me.File != "rpms.json" {
				t.Fatalf("error %v is not a MetadataError naming rpms.json", err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not say %q", err, tt.message)
			}
		})
	}
}

// TestStreamRPMsStrings: escapes are read, unknown fields skipped, null
// sigkeys empty, and duplicate fields take the last value, as encoding/json
// did.
func TestStreamRPMsStrings(t *testing.T) {
	in := `{"header": {"type": "productmd.rpms", "version": "1.2"}, "payload": {"rpms": {"Every\u0074hing": {"x86_64": {
		"bash-0:5.2-1.fc44.src": {
			"bash-0:5.2-1.fc44.x86_64": {"category": "binary", "extra": [1, {"a": null}], "path": "first", "path": "Everything/x86_64/os/Packages/b/bash-5.2-1.fc44.x86_64.rpm", "sigkey": "a15b79cc"},
			"bash\u002ddoc-0:5.2-1.fc44.noarch": {"category": "binary", "path": "Everything/x86_64/os/Packages/b/bash-doc\u00e9.rpm", "sigkey": null}
		}}}}}}`
	var got []RPM
	if _, err := StreamRPMs(strings.NewReader(in), "rpms.json", func(r RPM) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []RPM{
		{"Everything", "x86_64", "bash-0:5.2-1.fc44.src", "bash-0:5.2-1.fc44.x86_64", "Everything/x86_64/os/Packages/b/bash-5.2-1.fc44.x86_64.rpm", "a15b79cc", "binary"},
		{"Everything", "x86_64", "bash-0:5.2-1.fc44.src", "bash-doc-0:5.2-1.fc44.noarch", "Everything/x86_64/os/Packages/b/bash-docé.rpm", "", "binary"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

// TestValidStatusMatchesRegexp holds the hand-written check to the regexp
// it stands for, on words around its edges: lengths 0 to 66, and the bytes
// just outside its classes.
func TestValidStatusMatchesRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
	alphabet := []byte("AZaz09_.-@[`{/:,+ \n\xc3<")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(67))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
			if rng.IntN(3) > 0 {
				b[i] = 'A' + byte(rng.IntN(26))
			}
		}
		if got, want := ValidStatus(string(b)), re.Match(b); got != want {
			t.Fatalf("ValidStatus(%q) = %v, the regexp says %v", b, got, want)
		}
	}
	for _, s := range []string{"FINISHED", "STARTED", "finished", "FINISHED-INCOMPLETE", "RC1.0"} {
		if !ValidStatus(s) {
			t.Errorf("ValidStatus(%q) = false: Pungi allows nonstandard words", s)
		}
	}
}
