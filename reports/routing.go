package reports

import (
	"bytes"
	"cmp"
	_ "embed"
	"fmt"
	"io"
	"net/mail"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/BurntSushi/toml"

	"github.com/composeci/composeci/fedfind"
)

//go:embed routing.toml
var defaultRoutingTOML []byte

// Lists are the two recipient lists of a stream or subvariant.
type Lists struct {
	// All get every report.
	All []string `toml:"all"`
	// Error get only reports with a problem (Report.Problem).
	Error []string `toml:"error"`
}

// Routing decides who receives a report, as check-compose does: the
// stream's lists plus the lists of each subvariant the compose has. Build
// one with DefaultRouting, LoadRouting, ParseRouting or OverrideRouting.
type Routing struct {
	Streams map[fedfind.StreamKind]Lists
	// Subvariants are keyed by lower-cased name.
	Subvariants map[string]Lists
	// Override, when set, receives every report and nothing else does.
	Override []string
}

// DefaultRouting returns the built-in routing (reports/routing.toml),
// which mails nobody: a copy of its own each time, which the caller may
// change.
func DefaultRouting() Routing {
	rt, err := defaultRouting()
	if err != nil {
		panic(err) // the embedded file is tested
	}
	return rt.clone()
}

// defaultRouting parses the embedded routing once, on first use: not at
// start-up, where every command would pay for it (docs/performance.md,
// "Start-up"). The parsed routing is never handed out, only cloned, so the
// cache is an immutable value.
var defaultRouting = sync.OnceValues(func() (Routing, error) {
	return ParseRouting(bytes.NewReader(defaultRoutingTOML), "routing.toml")
})

// clone copies rt deeply.
func (rt Routing) clone() Routing {
	lists := func(l Lists) Lists { return Lists{All: slices.Clone(l.All), Error: slices.Clone(l.Error)} }
	out := Routing{Override: slices.Clone(rt.Override)}
	if rt.Streams != nil {
		out.Streams = make(map[fedfind.StreamKind]Lists, len(rt.Streams))
		for k, v := range rt.Streams {
			out.Streams[k] = lists(v)
		}
	}
	if rt.Subvariants != nil {
		out.Subvariants = make(map[string]Lists, len(rt.Subvariants))
		for k, v := range rt.Subvariants {
			out.Subvariants[k] = lists(v)
		}
	}
	return out
}

// LoadRouting reads a routing file; an empty path means DefaultRouting.
func LoadRouting(path string) (Routing, error) {
	if path == "" {
		return DefaultRouting(), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return Routing{}, fmt.Errorf("routing: %w", err)
	}
	defer f.Close()
	return ParseRouting(f, path)
}

// ParseRouting reads routing TOML (the shape of reports/routing.toml).
// Unknown keys, unknown streams and malformed addresses are errors wrapping
// fedfind.ErrInvalidInput: a typo in a routing file must not silently drop
// a list. name is used in errors.
func ParseRouting(r io.Reader, name string) (Routing, error) {
	var doc struct {
		Streams     map[string]Lists `toml:"streams"`
		Subvariants map[string]Lists `toml:"subvariants"`
	}
	md, err := toml.NewDecoder(r).Decode(&doc)
	if err != nil {
		return Routing{}, fmt.Errorf("%w: %s: %w", fedfind.ErrInvalidInput, name, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return Routing{}, fmt.Errorf("%w: %s: unknown keys %v", fedfind.ErrInvalidInput, name, und)
	}
	rt := Routing{Streams: map[fedfind.StreamKind]Lists{}, Subvariants: map[string]Lists{}}
	for s, l := range doc.Streams {
		k := fedfind.StreamKind(s)
		if !k.Known() {
			return Routing{}, fmt.Errorf("%w: %s: unknown stream %q", fedfind.ErrInvalidInput, name, s)
		}
		if l, err = l.normalize(); err != nil {
			return Routing{}, fmt.Errorf("%s: streams.%s: %w", name, s, err)
		}
		rt.Streams[k] = l
	}
	for sv, l := range doc.Subvariants {
		if l, err = l.normalize(); err != nil {
			return Routing{}, fmt.Errorf("%s: subvariants.%s: %w", name, sv, err)
		}
		key := strings.ToLower(sv)
		prev := rt.Subvariants[key] // "BaseOS" and "baseos" both given: merge
		rt.Subvariants[key] = Lists{All: merge(prev.All, l.All), Error: merge(prev.Error, l.Error)}
	}
	return rt, nil
}

// OverrideRouting sends every report to addrs, whatever its stream or
// problems: what --mail-to does.
func OverrideRouting(addrs []string) (Routing, error) {
	norm, err := NormalizeAddresses(addrs)
	if err != nil {
		return Routing{}, err
	}
	if len(norm) == 0 {
		return Routing{}, fmt.Errorf("%w: no addresses to send to", fedfind.ErrInvalidInput)
	}
	return Routing{Override: norm}, nil
}

func (l Lists) normalize() (Lists, error) {
	all, err := NormalizeAddresses(l.All)
	if err != nil {
		return Lists{}, fmt.Errorf("all: %w", err)
	}
	errs, err := NormalizeAddresses(l.Error)
	if err != nil {
		return Lists{}, fmt.Errorf("error: %w", err)
	}
	return Lists{All: all, Error: errs}, nil
}

// NormalizeAddresses parses each address (RFC 5322, with or without a
// display name) and returns them sorted and distinct, compared
// case-insensitively on the address alone. A bare address comes back bare,
// one with a display name as net/mail formats it (quoted and escaped). A
// string net/mail cannot parse — including one holding a line break — is an
// error wrapping fedfind.ErrInvalidInput.
func NormalizeAddresses(addrs []string) ([]string, error) {
	out := []string{}
	for _, a := range addrs {
		p, err := mail.ParseAddress(strings.TrimSpace(a))
		if err != nil {
			return nil, fmt.Errorf("%w: bad address %q: %w", fedfind.ErrInvalidInput, a, err)
		}
		if p.Name == "" {
			out = append(out, p.Address) // bare, as people write it
		} else {
			out = append(out, p.String())
		}
	}
	return merge(out), nil
}

// addrKey is what two spellings of one recipient share.
func addrKey(a string) string {
	if p, err := mail.ParseAddress(a); err == nil {
		return strings.ToLower(p.Address)
	}
	return strings.ToLower(a)
}

// merge joins already-parsed address lists, sorted by address and distinct.
func merge(lists ...[]string) []string {
	out := []string{}
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.SortFunc(out, func(a, b string) int { return cmp.Or(cmp.Compare(addrKey(a), addrKey(b)), cmp.Compare(a, b)) })
	return slices.CompactFunc(out, func(a, b string) bool { return addrKey(a) == addrKey(b) })
}

// Recipients returns who receives r, sorted and distinct: Override if set;
// otherwise the "all" lists of r's stream and of every subvariant in
// r.Subvariants, plus their "error" lists when r.Problem. It may be empty:
// then nobody is to be mailed.
func (rt Routing) Recipients(r Report) []string {
	if len(rt.Override) > 0 {
		return slices.Clone(rt.Override)
	}
	var lists [][]string
	add := func(l Lists) {
		lists = append(lists, l.All)
		if r.Problem {
			lists = append(lists, l.Error)
		}
	}
	if l, ok := rt.Streams[fedfind.StreamKind(r.Stream.Kind)]; ok {
		add(l)
	}
	for _, sv := range r.Subvariants {
		if l, ok := rt.Subvariants[strings.ToLower(sv)]; ok {
			add(l)
		}
	}
	return merge(lists...)
}
