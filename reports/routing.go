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

// Lists are the two recipient lists of a stream or subvariant, and when
// they are told.
type Lists struct {
	// All get the reports When admits.
	All []string `toml:"all"`
	// Error get the reports When admits that also have a problem
	// (Report.Problem): an error list never hears of a good compose.
	Error []string `toml:"error"`
	// When is when the table's lists are told; "" means WhenChange.
	When When `toml:"when"`
}

// Routing decides who is told of a report, as check-compose does: the
// stream's lists plus the lists of each subvariant the compose has, by
// mail, and the webhooks. Build one with DefaultRouting, LoadRouting,
// ParseRouting or OverrideRouting.
type Routing struct {
	Streams map[fedfind.StreamKind]Lists
	// Subvariants are keyed by lower-cased name.
	Subvariants map[string]Lists
	// Override, when set, receives every report by mail and no list does.
	Override []string
	// Webhooks are the routing file's [[webhook]] entries, in file order.
	// Override does not silence them.
	Webhooks []Webhook
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
	lists := func(l Lists) Lists {
		return Lists{All: slices.Clone(l.All), Error: slices.Clone(l.Error), When: l.When}
	}
	out := Routing{Override: slices.Clone(rt.Override)}
	for _, w := range rt.Webhooks {
		w.Streams = slices.Clone(w.Streams)
		out.Webhooks = append(out.Webhooks, w)
	}
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

// LoadRouting reads a routing file; an empty path means DefaultRouting. A
// webhook's relative secret_file is found beside the routing file.
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
// Unknown keys, unknown streams, unknown `when` values, malformed addresses
// and webhooks whose URL or secret file is unusable are errors wrapping
// fedfind.ErrInvalidInput: a typo in a routing file must not silently drop
// a list. name is the file's path: it is used in errors, and a webhook's
// relative secret_file is resolved against its directory. Each webhook's
// secret is read here, once, so a missing file fails at start-up rather
// than at the first report.
func ParseRouting(r io.Reader, name string) (Routing, error) {
	var doc struct {
		Streams     map[string]Lists `toml:"streams"`
		Subvariants map[string]Lists `toml:"subvariants"`
		Webhooks    []webhookEntry   `toml:"webhook"`
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
		prev, seen := rt.Subvariants[key] // "BaseOS" and "baseos" both given: merge
		if seen && prev.When != l.When {
			return Routing{}, fmt.Errorf("%w: %s: subvariants.%s: given twice (names match case-insensitively) with when %q and %q",
				fedfind.ErrInvalidInput, name, sv, prev.When, l.When)
		}
		rt.Subvariants[key] = Lists{All: merge(prev.All, l.All), Error: merge(prev.Error, l.Error), When: l.When}
	}
	urls := map[string]int{}
	for i, e := range doc.Webhooks {
		w, err := e.webhook(name)
		if err != nil {
			return Routing{}, fmt.Errorf("%s: webhook %d: %w", name, i+1, err)
		}
		if j, dup := urls[w.URL]; dup {
			return Routing{}, fmt.Errorf("%w: %s: webhook %d: the URL of webhook %d again (%s)", fedfind.ErrInvalidInput, name, i+1, j, w.Endpoint())
		}
		urls[w.URL] = i + 1
		rt.Webhooks = append(rt.Webhooks, w)
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
	when, err := ParseWhen(string(l.When))
	if err != nil {
		return Lists{}, err
	}
	return Lists{All: all, Error: errs, When: when}, nil
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

// Recipients returns who receives r when it is taken as changed:
// RecipientsWhen(r, true). For every `when` but "error" that is what it
// always was — the all lists, and the error lists with a problem — so
// callers that know nothing of change keep their behaviour.
func (rt Routing) Recipients(r Report) []string {
	return rt.RecipientsWhen(r, true)
}

// RecipientsWhen returns who is mailed r, sorted and distinct, given
// whether the compose's state changed (Changes(prev, r).Changed()):
// Override if set (it receives every report); otherwise, of r's stream and
// of every subvariant in r.Subvariants, each table whose When admits r
// gives its "all" list, and its "error" list too when r.Problem. It may be
// empty: then nobody is to be mailed.
func (rt Routing) RecipientsWhen(r Report, changed bool) []string {
	if len(rt.Override) > 0 {
		return slices.Clone(rt.Override)
	}
	var lists [][]string
	add := func(l Lists) {
		if !l.When.Admits(r, changed) {
			return
		}
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

// WebhooksFor returns the webhooks told of r, in file order, given whether
// the compose's state changed: those whose When admits r and whose Streams,
// if any, include r's stream.
func (rt Routing) WebhooksFor(r Report, changed bool) []Webhook {
	var out []Webhook
	for _, w := range rt.Webhooks {
		if w.Admits(r, changed) {
			out = append(out, w)
		}
	}
	return out
}

// When says which reports a routing entry is told of.
type When string

// The values of `when`.
const (
	// WhenAlways: every report (what routing did before `when` existed).
	WhenAlways When = "always"
	// WhenChange: reports of composes whose state changed from the
	// previous compose's (Changes): a new or fixed failure, a missing or
	// returning image, a STATUS change, a doomed compose, or no previous
	// report to compare with. The default.
	WhenChange When = "change"
	// WhenError: reports with a problem (Report.Problem): a missing
	// expected image, a new failure, a doomed compose.
	WhenError When = "error"
)

// ParseWhen reads a `when` value; "" is WhenChange, the default. Anything
// else unknown wraps fedfind.ErrInvalidInput.
func ParseWhen(s string) (When, error) {
	switch w := When(strings.ToLower(strings.TrimSpace(s))); w {
	case "":
		return WhenChange, nil
	case WhenAlways, WhenChange, WhenError:
		return w, nil
	}
	return "", fmt.Errorf("%w: when %q (want always, change or error)", fedfind.ErrInvalidInput, s)
}

// Admits reports whether an entry with this When is told of r, given
// whether the compose's state changed. The zero When is WhenChange.
func (w When) Admits(r Report, changed bool) bool {
	switch w {
	case WhenAlways:
		return true
	case WhenError:
		return r.Problem
	default:
		return changed
	}
}
