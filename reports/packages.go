package reports

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/composeci/composeci/fedfind"
)

// The packages section: what the compose changed in source packages
// against the previous compose (fedfind's package diff of the two
// composes' rpms.json), and beside each new failure the packages upgraded
// in its image's variant, those its test or failed module names first.

// Packages is the report's packages section: the source package diff of
// the previous compose (Old) and this one (New), rolled up over every
// variant and arch. Its JSON is that of `composeci pkgdiff --json` without
// the per-tree lists: {"old","new","added","removed","upgraded",
// "downgraded","unchanged"}, every list sorted by name.
type Packages struct {
	Old string `json:"old"`
	New string `json:"new"`
	fedfind.SourceChanges
}

// UpgradedPackage is an upgraded source package listed beside a new
// failure.
type UpgradedPackage struct {
	Name string      `json:"name"`
	From fedfind.EVR `json:"from"`
	To   fedfind.EVR `json:"to"`
	// Matched says why the package leads the list: "test" when its name
	// occurs in the test's name, "module" when in the name of a module the
	// job failed in; "" for the rest.
	Matched string `json:"matched,omitempty"`
}

// PackageInput is what the packages section and the failures' upgraded
// packages are built from.
type PackageInput struct {
	// Old and New are the source packages of the previous compose and of
	// the compose checked, from their rpms.json.
	Old, New *fedfind.SourcePackages
	// Images are the compose's images: a failure's FLAVOR and ARCH name
	// its image, and the image's variant the tree whose upgrades it lists.
	Images []fedfind.Image
	// FailedModules are the openQA modules failed jobs failed in (job id →
	// module names), for the jobs they were read for; nil: none read.
	FailedModules map[int64][]string
}

// MaxFailurePackages is how many upgraded packages a new failure lists;
// the rest are counted (upgraded_packages_more), so that a mass rebuild
// does not repeat thousands of packages beside every failure.
const MaxFailurePackages = 10

// packageIndex answers which packages were upgraded where a failure ran.
type packageIndex struct {
	rolledUp []fedfind.PackageUpdate
	// trees are the trees either compose has, by lower-case
	// "variant/arch": their name as rpms.json spells it, and their
	// upgrades (none for a tree that did not change).
	trees map[string]tree
	// variants are the images' variants by FLAVOR (and identity) and
	// arch.
	variants map[[2]string]string
}

type tree struct {
	name     string
	upgraded []fedfind.PackageUpdate
}

func treeKey(variant, arch string) string { return strings.ToLower(variant + "/" + arch) }

// packagesOf diffs the packages of in and indexes the upgrades for the
// failures.
func packagesOf(in *PackageInput) (*Packages, packageIndex) {
	d := fedfind.PackageDiff(in.Old, in.New)
	p := &Packages{Old: d.Old, New: d.New, SourceChanges: d.SourceChanges}
	x := packageIndex{rolledUp: d.Upgraded, trees: map[string]tree{}, variants: map[[2]string]string{}}
	for _, sp := range []*fedfind.SourcePackages{in.Old, in.New} {
		for _, t := range sp.Trees {
			if k := treeKey(t.Variant, t.Arch); x.trees[k].name == "" {
				x.trees[k] = tree{name: t.Variant + "/" + t.Arch}
			}
		}
	}
	for _, t := range d.Trees {
		k := treeKey(t.Variant, t.Arch)
		x.trees[k] = tree{name: x.trees[k].name, upgraded: t.Upgraded}
	}
	for _, im := range in.Images {
		for _, f := range []string{im.Flavor(), im.Identity} {
			if _, ok := x.variants[[2]string{f, im.Arch}]; !ok && im.Variant != "" {
				x.variants[[2]string{f, im.Arch}] = im.Variant
			}
		}
	}
	return p, x
}

// upgradesOf sets a new failure's upgraded packages: those of the tree of
// its image's variant on its arch, or of the whole compose when the image
// or its tree is unknown (openQA's "universal" flavor, a variant rpms.json
// does not list); ordered by rankUpgrades and capped at
// MaxFailurePackages.
func (x packageIndex) upgradesOf(j *Job, modules []string) {
	list := x.rolledUp
	if v, ok := x.variants[[2]string{j.Flavor, j.Arch}]; ok {
		if t, ok := x.trees[treeKey(v, j.Arch)]; ok {
			list, j.UpgradedTree = t.upgraded, t.name
		}
	}
	ranked := rankUpgrades(list, j.Test, modules)
	n := min(len(ranked), MaxFailurePackages)
	j.UpgradedPackages, j.UpgradedMore = ranked[:n:n], len(ranked)-n
}

// rankUpgrades orders upgraded packages for a failure of test, which
// failed in modules: first those whose whole name occurs in the test's
// name or a module's (cockpit in server_cockpit_default), then those
// sharing a word with them (python-blivet and install_blivet_lvm,
// gnome-terminal and desktop_terminal), then the rest; by name within
// each. Names are compared as lower-case words split at anything not a
// letter or digit; shared words must have three letters or more and not
// be one of the generic words of openQA's test names (desktop, server,
// base, ...), which would match half the distribution.
func rankUpgrades(ups []fedfind.PackageUpdate, test string, modules []string) []UpgradedPackage {
	type ranked struct {
		UpgradedPackage
		rank int
	}
	testWords := words(test)
	modWords := make([][]string, 0, len(modules))
	for _, m := range modules {
		modWords = append(modWords, words(m))
	}
	inModules := func(match func(in, name []string) bool, name []string) bool {
		return slices.ContainsFunc(modWords, func(m []string) bool { return match(m, name) })
	}
	out := make([]ranked, 0, len(ups))
	for _, u := range ups {
		r := ranked{UpgradedPackage: UpgradedPackage{Name: u.Name, From: u.From, To: u.To}, rank: 2}
		name := words(u.Name)
		switch {
		case containsRun(testWords, name):
			r.rank, r.Matched = 0, "test"
		case inModules(containsRun, name):
			r.rank, r.Matched = 0, "module"
		case sharesWord(testWords, name):
			r.rank, r.Matched = 1, "test"
		case inModules(sharesWord, name):
			r.rank, r.Matched = 1, "module"
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b ranked) int { return cmp.Or(cmp.Compare(a.rank, b.rank), strings.Compare(a.Name, b.Name)) })
	list := make([]UpgradedPackage, len(out))
	for i, r := range out {
		list[i] = r.UpgradedPackage
	}
	return list
}

// words splits a name into lower-case words at every character that is
// not a letter or a digit: "gnome-terminal" is gnome and terminal,
// "_boot_to_anaconda" boot, to and anaconda.
func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// containsRun reports whether name's words occur in a row in in.
func containsRun(in, name []string) bool {
	if len(name) == 0 {
		return false
	}
	for i := 0; i+len(name) <= len(in); i++ {
		if slices.Equal(in[i:i+len(name)], name) {
			return true
		}
	}
	return false
}

// sharesWord reports whether a telling word of name is one of in.
func sharesWord(in, name []string) bool {
	return slices.ContainsFunc(name, func(w string) bool {
		return len(w) >= 3 && !genericWord(w) && slices.Contains(in, w)
	})
}

// genericWord reports whether w is too common in openQA's test names, or
// in source package names, to relate a package to a test.
func genericWord(w string) bool {
	switch w {
	case "app", "apps", "base", "boot", "check", "client", "common", "core", "default", "desktop", "devel",
		"fedora", "install", "lib", "libs", "live", "perl", "python", "python3", "release", "rust", "server",
		"service", "services", "test", "tests", "tools", "update", "updates", "upgrade", "utils":
		return true
	}
	return false
}

// UpgradedLine says in one line what was upgraded where a new failure ran,
// naming the first n packages: "upgraded in KDE/x86_64: gnome-terminal,
// bash and 3 more". "" when the packages were not compared.
func (j Job) UpgradedLine(n int) string {
	if j.UpgradedPackages == nil {
		return ""
	}
	where := "the compose"
	if j.UpgradedTree != "" {
		where = j.UpgradedTree
	}
	if len(j.UpgradedPackages) == 0 {
		return "no package upgraded in " + where
	}
	n = max(min(n, len(j.UpgradedPackages)), 1)
	names := make([]string, n)
	for i, p := range j.UpgradedPackages[:n] {
		names[i] = p.Name
	}
	s := "upgraded in " + where + ": " + strings.Join(names, ", ")
	if more := len(j.UpgradedPackages) - n + j.UpgradedMore; more > 0 {
		s += " and " + strconv.Itoa(more) + " more"
	}
	return s
}

// PackageGroup is one kind of change of the packages section as a page
// lists it: its first packages and how many more there are.
type PackageGroup struct {
	// Kind is "added", "removed", "upgraded" or "downgraded"; Title the
	// same, capitalised.
	Kind, Title string
	Total       int
	Rows        []PackageRow
	// More is how many are not in Rows.
	More int
	// Width is the length of the longest name listed in any group (at
	// most 40), to align a text column.
	Width int
}

// PackageRow is one package of a PackageGroup: From is "" for an added
// package, To "" for a removed one.
type PackageRow struct {
	Name, From, To string
}

// Groups lists the kinds of change there are packages of, in the order
// added, removed, upgraded, downgraded, each with its first n packages.
func (p *Packages) Groups(n int) []PackageGroup {
	var out []PackageGroup
	add := func(kind string, rows []PackageRow) {
		if len(rows) == 0 {
			return
		}
		g := PackageGroup{Kind: kind, Title: strings.ToUpper(kind[:1]) + kind[1:], Total: len(rows)}
		g.Rows = rows[:min(n, len(rows))]
		g.More = len(rows) - len(g.Rows)
		out = append(out, g)
	}
	refs := func(list []fedfind.PackageRef, added bool) []PackageRow {
		rows := make([]PackageRow, 0, len(list))
		for _, r := range list {
			if added {
				rows = append(rows, PackageRow{Name: r.Name, To: r.NEVR.EVR.String()})
			} else {
				rows = append(rows, PackageRow{Name: r.Name, From: r.NEVR.EVR.String()})
			}
		}
		return rows
	}
	updates := func(list []fedfind.PackageUpdate) []PackageRow {
		rows := make([]PackageRow, 0, len(list))
		for _, u := range list {
			rows = append(rows, PackageRow{Name: u.Name, From: u.From.String(), To: u.To.String()})
		}
		return rows
	}
	add("added", refs(p.Added, true))
	add("removed", refs(p.Removed, false))
	add("upgraded", updates(p.Upgraded))
	add("downgraded", updates(p.Downgraded))
	width := 0
	for _, g := range out {
		for _, r := range g.Rows {
			width = min(max(width, utf8.RuneCountInString(r.Name)), 40)
		}
	}
	for i := range out {
		out[i].Width = width
	}
	return out
}

// Counts says how many source packages changed, each kind counted:
// "1 added, 0 removed, 3 upgraded, 0 downgraded, 1200 unchanged".
func (p *Packages) Counts() string {
	return fmt.Sprintf("%d added, %d removed, %d upgraded, %d downgraded, %d unchanged",
		len(p.Added), len(p.Removed), len(p.Upgraded), len(p.Downgraded), p.Unchanged)
}
