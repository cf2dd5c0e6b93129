package fakefedora

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// PackageSpec is a source package of a simulated compose: what rpms.json
// lists under its source NEVRA in each variant and arch that carries it.
type PackageSpec struct {
	Name    string
	Epoch   int // written "0:" when zero, as productmd writes every NEVRA
	Version string
	Release string
	// Variants that carry it; nil means Everything.
	Variants []string
	// Arches it is built for; nil means aarch64 and x86_64.
	Arches []string
	// Binaries are the names of the binary packages it builds, each listed
	// with its debuginfo; nil means one, named as the source package.
	Binaries []string
	// Noarch binaries (no debuginfo): documentation, fonts, Python code.
	Noarch bool
}

// Packages builds PackageSpecs from "name-[epoch:]version-release"
// strings ("bash-5.2.37-3.fc44", "libfoo-1:2.0-1.fc44"), each with the
// defaults; a fixture changes the fields of the few that need more. It
// panics on a string that is not of that form: fixtures are fixed.
func Packages(nevrs ...string) []PackageSpec {
	out := make([]PackageSpec, 0, len(nevrs))
	for _, s := range nevrs {
		rd := strings.LastIndexByte(s, '-')
		vd := strings.LastIndexByte(s[:max(rd, 0)], '-')
		if rd <= 0 || vd <= 0 {
			panic(fmt.Sprintf("fakefedora: %q is not name-[epoch:]version-release", s))
		}
		p := PackageSpec{Name: s[:vd], Version: s[vd+1 : rd], Release: s[rd+1:]}
		if e, v, ok := strings.Cut(p.Version, ":"); ok {
			n, err := strconv.Atoi(e)
			if err != nil {
				panic(fmt.Sprintf("fakefedora: bad epoch in %q", s))
			}
			p.Epoch, p.Version = n, v
		}
		out = append(out, p)
	}
	return out
}

// SyntheticPackages makes n source packages shaped like Fedora's, for
// benchmarks: names of varied length, one to three binary packages each (a
// fifth of them noarch), built for four arches (a sixth for x86_64 alone),
// all in Everything and some also in Server and Workstation. release is the
// dist tag of every release ("fc44"). It is deterministic: the same n
// gives the same packages.
func SyntheticPackages(n int, release string) []PackageSpec {
	prefixes := []string{"", "python-", "perl-", "rust-", "golang-github-", "texlive-", "ghc-", "nodejs-", "lib"}
	words := []string{"core", "utils", "toolkit", "server", "client", "parser", "bindings", "x", "common", "ng"}
	all := []string{"aarch64", "ppc64le", "s390x", "x86_64"}
	out := make([]PackageSpec, n)
	for i := range out {
		name := prefixes[i%len(prefixes)] + words[(i/7)%len(words)] + strconv.Itoa(i)
		p := PackageSpec{
			Name:    name,
			Version: strconv.Itoa(1+i%13) + "." + strconv.Itoa(i%101) + "." + strconv.Itoa(i%7),
			Release: strconv.Itoa(1+i%4) + "." + release,
			Arches:  all,
			Noarch:  i%5 == 0,
		}
		if i%6 == 0 {
			p.Arches = []string{"x86_64"}
		}
		switch {
		case i%11 == 0:
			p.Variants = []string{"Everything", "Server", "Workstation"}
		case i%4 == 0:
			p.Variants = []string{"Everything", "Workstation"}
		}
		p.Binaries = []string{name}
		for _, sub := range []string{"-libs", "-devel"}[:i%3] {
			p.Binaries = append(p.Binaries, name+sub)
		}
		out[i] = p
	}
	return out
}

// srpm is the source NEVRA productmd writes: epoch always present.
func (p PackageSpec) nevra(name, arch string) string {
	return name + "-" + strconv.Itoa(p.Epoch) + ":" + p.Version + "-" + p.Release + "." + arch
}

// nvra is the file name of a package without ".rpm": no epoch.
func (p PackageSpec) nvra(name, arch string) string {
	return name + "-" + p.Version + "-" + p.Release + "." + arch
}

func (p PackageSpec) variants() []string {
	if p.Variants == nil {
		return []string{"Everything"}
	}
	return p.Variants
}

func (p PackageSpec) arches() []string {
	if p.Arches == nil {
		return []string{"aarch64", "x86_64"}
	}
	return p.Arches
}

// WriteRPMsOf writes an rpms.json for compose id listing pkgs the way Pungi
// does (productmd 1.2, sorted keys, four-space indent): under each variant
// and arch that carries a source package, its source NEVRA maps each of
// its RPMs — binaries, their debuginfo, and the source RPM itself — to
// {category, path, sigkey}. It streams: the file is never held whole.
func WriteRPMsOf(w io.Writer, id, formatVersion string, pkgs []PackageSpec) error {
	mc, err := place(id)
	if err != nil {
		return err
	}
	mc.spec.ID = id
	// Which packages each variant and arch carries, in key order.
	trees := map[string]map[string][]int{}
	for i, p := range pkgs {
		for _, v := range p.variants() {
			if trees[v] == nil {
				trees[v] = map[string][]int{}
			}
			for _, a := range p.arches() {
				trees[v][a] = append(trees[v][a], i)
			}
		}
	}
	srpms := make([]string, len(pkgs))
	for i, p := range pkgs {
		srpms[i] = p.nevra(p.Name, "src")
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	meta, _ := json.Marshal(mc.composeMeta())
	hdr, _ := json.Marshal(header("rpms", formatVersion))
	fmt.Fprintf(bw, "{\n    \"header\": %s,\n    \"payload\": {\n        \"compose\": %s,\n        \"rpms\": {", hdr, meta)
	type rpm struct{ nevra, category, path string }
	var group []rpm
	var buf []byte
	for vi, v := range sortedKeys(trees) {
		if vi > 0 {
			bw.WriteString(",")
		}
		fmt.Fprintf(bw, "\n            %q: {", v)
		for ai, a := range sortedKeys(trees[v]) {
			if ai > 0 {
				bw.WriteString(",")
			}
			fmt.Fprintf(bw, "\n                %q: {", a)
			idx := trees[v][a]
			slices.SortFunc(idx, func(x, y int) int { return strings.Compare(srpms[x], srpms[y]) })
			for k, i := range idx {
				p := pkgs[i]
				letter := strings.ToLower(p.Name[:1])
				group = group[:0]
				binArch := a
				if p.Noarch {
					binArch = "noarch"
				}
				bins := p.Binaries
				if bins == nil {
					bins = []string{p.Name}
				}
				for _, b := range bins {
					group = append(group, rpm{p.nevra(b, binArch), "binary", v + "/" + a + "/os/Packages/" + letter + "/" + p.nvra(b, binArch) + ".rpm"})
					if !p.Noarch {
						group = append(group, rpm{p.nevra(b+"-debuginfo", a), "debug", v + "/" + a + "/debug/tree/Packages/" + letter + "/" + p.nvra(b+"-debuginfo", a) + ".rpm"})
					}
				}
				group = append(group, rpm{srpms[i], "source", v + "/source/tree/Packages/" + letter + "/" + p.nvra(p.Name, "src") + ".rpm"})
				slices.SortFunc(group, func(x, y rpm) int { return strings.Compare(x.nevra, y.nevra) })

				buf = buf[:0]
				if k > 0 {
					buf = append(buf, ',')
				}
				buf = append(buf, "\n                    \""...)
				buf = append(buf, srpms[i]...)
				buf = append(buf, "\": {"...)
				for j, r := range group {
					if j > 0 {
						buf = append(buf, ',')
					}
					buf = append(buf, "\n                        \""...)
					buf = append(buf, r.nevra...)
					buf = append(buf, "\": {\n                            \"category\": \""...)
					buf = append(buf, r.category...)
					buf = append(buf, "\",\n                            \"path\": \""...)
					buf = append(buf, r.path...)
					buf = append(buf, "\",\n                            \"sigkey\": "...)
					if r.category == "source" {
						buf = append(buf, "null"...) // Pungi lists source RPMs unsigned
					} else {
						buf = append(buf, "\"a15b79cc\""...)
					}
					buf = append(buf, "\n                        }"...)
				}
				buf = append(buf, "\n                    }"...)
				bw.Write(buf)
			}
			bw.WriteString("\n                }")
		}
		bw.WriteString("\n            }")
	}
	bw.WriteString("\n        }\n    }\n}\n")
	return bw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// WriteRPMs writes an rpms.json for compose id listing n packages (each a
// binary RPM of its own source RPM, spread over a few variants and arches).
// It streams, so it can write files of any size.
func WriteRPMs(w io.Writer, id, formatVersion string, n int) error {
	mc, err := place(id)
	if err != nil {
		return err
	}
	mc.spec.ID = id
	bw := &errWriter{w: w}
	meta, _ := json.Marshal(mc.composeMeta())
	hdr, _ := json.Marshal(header("rpms", formatVersion))
	fmt.Fprintf(bw, "{\n    \"header\": %s,\n    \"payload\": {\n        \"compose\": %s,\n        \"rpms\": {", hdr, meta)
	variants := []string{"Everything", "Server", "Workstation"}
	arches := []string{"aarch64", "x86_64"}
	per := (n + len(variants)*len(arches) - 1) / (len(variants) * len(arches))
	written := 0
	for vi, v := range variants {
		if vi > 0 {
			bw.WriteString(",")
		}
		fmt.Fprintf(bw, "\n            %q: {", v)
		for ai, a := range arches {
			if ai > 0 {
				bw.WriteString(",")
			}
			fmt.Fprintf(bw, "\n                %q: {", a)
			for i := 0; i < per && written < n; i++ {
				if i > 0 {
					bw.WriteString(",")
				}
				name := fmt.Sprintf("pkg%06d", written)
				srpm := fmt.Sprintf("%s-0:1.%d-1.fc44.src", name, written%7)
				nevra := fmt.Sprintf("%s-0:1.%d-1.fc44.%s", name, written%7, a)
				fmt.Fprintf(bw, "\n                    %q: {\n                        %q: {\n                            \"category\": \"binary\",\n                            \"path\": \"%s/%s/os/Packages/%c/%s.rpm\",\n                            \"sigkey\": \"a15b79cc\"\n                        }\n                    }", srpm, nevra, v, a, name[0], nevra)
				written++
			}
			bw.WriteString("\n                }")
		}
		bw.WriteString("\n            }")
	}
	bw.WriteString("\n        }\n    }\n}\n")
	return bw.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) WriteString(s string) { e.Write([]byte(s)) }
