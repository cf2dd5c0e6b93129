package fedfind

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// StreamKind names a release stream: a series of composes published in one
// place of the compose tree.
type StreamKind string

// The release streams composeci knows.
const (
	StreamRawhide        StreamKind = "rawhide"
	StreamBranched       StreamKind = "branched"
	StreamELN            StreamKind = "eln"
	StreamCloud          StreamKind = "cloud"
	StreamContainer      StreamKind = "container"
	StreamIoT            StreamKind = "iot"
	StreamUpdates        StreamKind = "updates"
	StreamUpdatesTesting StreamKind = "updates-testing"
	StreamProduction     StreamKind = "production"
	// StreamOther is any other compose (test composes, other products): it
	// has no known place in the tree and is found only by URL.
	StreamOther StreamKind = "other"
)

var knownStreams = map[StreamKind]bool{
	StreamRawhide: true, StreamBranched: true, StreamELN: true, StreamCloud: true,
	StreamContainer: true, StreamIoT: true, StreamUpdates: true, StreamUpdatesTesting: true,
	StreamProduction: true, StreamOther: true,
}

// Known reports whether k is one of the stream kinds above.
func (k StreamKind) Known() bool { return knownStreams[k] }

// Stream is the release stream of a compose, derived from its ID.
type Stream struct {
	Kind StreamKind `json:"kind"`
	// Short is productmd's release short name: Fedora, Fedora-Cloud, ...
	Short string `json:"short"`
	// Version is the release version: Rawhide, 44, eln.
	Version string `json:"version"`
	// Dir is the directory of the stream under the compose root ("rawhide",
	// "branched", "44", ...); empty for StreamOther.
	Dir string `json:"dir,omitempty"`
}

// LatestLink is the name of the stream's latest-* link in Dir, which Pungi
// points at the newest FINISHED or FINISHED_INCOMPLETE compose:
// latest-<release short>-<release version>. The release type is no part of
// it, so updates and updates-testing composes of a release share one name
// ("latest-Fedora-43"), and Client.Latest checks whose compose it names.
func (s Stream) LatestLink() string {
	return "latest-" + s.Short + "-" + s.Version
}

// Nightly reports whether the stream's composes are nightlies (.n.N).
func (s Stream) Nightly() bool {
	return s.Kind == StreamRawhide || s.Kind == StreamBranched || s.Kind == StreamELN
}

// String names the stream for people: "Fedora Rawhide", "Fedora 44".
func (s Stream) String() string {
	if s.Kind == StreamOther {
		return "other"
	}
	name := strings.ReplaceAll(s.Short, "-", " ") + " " + s.Version
	switch s.Kind {
	case StreamUpdates:
		name += " updates"
	case StreamUpdatesTesting:
		name += " updates-testing"
	case StreamBranched:
		name += " (Branched)"
	}
	return name
}

// The stream patterns, compiled on first use, not at start-up
// (docs/conventions.md); a compiled regexp is immutable and safe to share.
var (
	releaseNum   = `([1-9][0-9]{0,3})`
	reReleaseNum = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^` + releaseNum + `$`) })
	reBranched   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Fedora-` + releaseNum + `$`) })
	reUpdates    = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^Fedora-` + releaseNum + `-(updates|updates-testing)$`)
	})
	reEdition = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(Fedora-(?:Cloud|Container|IoT))-(` + `[1-9][0-9]{0,3}|Rawhide` + `)$`)
	})
	streamOfKind = map[string]StreamKind{"Fedora-Cloud": StreamCloud, "Fedora-Container": StreamContainer, "Fedora-IoT": StreamIoT}
)

// StreamOf derives the release stream of a compose from its ID. IDs that are
// not Fedora's (test composes, other products) get StreamOther; such a
// compose can be read by URL but has no place of its own in the tree.
func StreamOf(id ComposeID) Stream {
	p := id.Prefix
	switch {
	case p == "Fedora-Rawhide" && id.Type == TypeNightly:
		return Stream{Kind: StreamRawhide, Short: "Fedora", Version: "Rawhide", Dir: "rawhide"}
	case strings.EqualFold(p, "Fedora-eln") && id.Type == TypeNightly:
		return Stream{Kind: StreamELN, Short: "Fedora", Version: "eln", Dir: "eln"}
	}
	if m := reBranched().FindStringSubmatch(p); m != nil {
		switch id.Type {
		case TypeNightly:
			return Stream{Kind: StreamBranched, Short: "Fedora", Version: m[1], Dir: "branched"}
		case TypeProduction:
			return Stream{Kind: StreamProduction, Short: "Fedora", Version: m[1], Dir: m[1]}
		}
	}
	if m := reUpdates().FindStringSubmatch(p); m != nil && id.Type == TypeProduction {
		k := StreamUpdates
		if m[2] == "updates-testing" {
			k = StreamUpdatesTesting
		}
		return Stream{Kind: k, Short: "Fedora", Version: m[1], Dir: "updates"}
	}
	if m := reEdition().FindStringSubmatch(p); m != nil && id.Type == TypeProduction {
		k := streamOfKind[m[1]]
		return Stream{Kind: k, Short: m[1], Version: m[2], Dir: string(k)}
	}
	return Stream{Kind: StreamOther, Short: p}
}

// StreamSpec names a stream rather than a compose, to ask for its latest
// compose: "rawhide", "branched" (the newest Branched), "branched:44",
// "eln", "cloud:44", "container:44", "iot:44", "updates:44",
// "updates-testing:44", "production:44".
type StreamSpec struct {
	Kind    StreamKind
	Version string // empty: the newest one there is (branched only)
}

// StreamSpecs lists the stream specs as people write them, for messages.
const StreamSpecs = "rawhide, branched, branched:44, eln, cloud:44, container:44, iot:44, updates:44, updates-testing:44, production:44"

// specKinds are the stream kinds a StreamSpec may name, in StreamSpecs'
// order.
func specKinds() []StreamKind {
	return []StreamKind{StreamRawhide, StreamBranched, StreamELN, StreamCloud, StreamContainer, StreamIoT,
		StreamUpdates, StreamUpdatesTesting, StreamProduction}
}

// ParseStreamSpec parses a stream spec. It reports ok=false, with no error,
// for a string that is not shaped like a stream spec at all (a compose ID, a
// release and label, a path). A word that names no stream ("rawhid",
// "brnached:44") is a mistyped one: ok=true, and an ErrInvalidInput that
// names the closest stream and lists them all.
func ParseStreamSpec(s string) (spec StreamSpec, ok bool, err error) {
	kind, ver, _ := strings.Cut(strings.ToLower(s), ":")
	k := StreamKind(kind)
	if !k.Known() || k == StreamOther {
		if !streamShaped(kind) {
			return StreamSpec{}, false, nil
		}
		return StreamSpec{}, true, fmt.Errorf("%w: %q is not a stream: did you mean %s? The streams are %s", ErrInvalidInput, s, closestStream(kind, ver), StreamSpecs)
	}
	switch k {
	case StreamRawhide, StreamELN:
		if ver != "" {
			return StreamSpec{}, true, fmt.Errorf("%w: stream %s takes no version", ErrInvalidInput, k)
		}
	case StreamBranched:
	default:
		if ver == "" {
			return StreamSpec{}, true, fmt.Errorf("%w: stream %s needs a release, e.g. %s:44", ErrInvalidInput, k, k)
		}
	}
	if ver != "" && !reReleaseNum().MatchString(ver) && !(ver == "rawhide" && (k == StreamCloud || k == StreamContainer || k == StreamIoT)) {
		return StreamSpec{}, true, fmt.Errorf("%w: %q is not a release number", ErrInvalidInput, ver)
	}
	return StreamSpec{Kind: k, Version: ver}, true, nil
}

// Stream returns the Stream a spec names; Version may still be empty for
// "branched".
func (sp StreamSpec) Stream() Stream {
	switch sp.Kind {
	case StreamRawhide:
		return Stream{Kind: StreamRawhide, Short: "Fedora", Version: "Rawhide", Dir: "rawhide"}
	case StreamELN:
		return Stream{Kind: StreamELN, Short: "Fedora", Version: "eln", Dir: "eln"}
	case StreamBranched:
		return Stream{Kind: StreamBranched, Short: "Fedora", Version: sp.Version, Dir: "branched"}
	case StreamUpdates, StreamUpdatesTesting:
		return Stream{Kind: sp.Kind, Short: "Fedora", Version: sp.Version, Dir: "updates"}
	case StreamProduction:
		return Stream{Kind: StreamProduction, Short: "Fedora", Version: sp.Version, Dir: sp.Version}
	}
	short := map[StreamKind]string{StreamCloud: "Fedora-Cloud", StreamContainer: "Fedora-Container", StreamIoT: "Fedora-IoT"}[sp.Kind]
	v := sp.Version
	if v == "rawhide" {
		v = "Rawhide"
	}
	return Stream{Kind: sp.Kind, Short: short, Version: v, Dir: string(sp.Kind)}
}

// streamShaped reports whether the part of a ref before any ':' could be a
// stream's name: letters, '-' and '_' only. Compose IDs carry a date, labels
// a release number, paths dots and slashes.
func streamShaped(kind string) bool {
	if kind == "" {
		return false
	}
	for _, r := range kind {
		if (r < 'a' || r > 'z') && r != '-' && r != '_' {
			return false
		}
	}
	return true
}

// closestStream returns the stream spec nearest to kind by edit distance,
// with ver when that stream takes a release.
func closestStream(kind, ver string) string {
	best, bestDist := StreamRawhide, -1
	for _, k := range specKinds() {
		if d := editDistance(kind, string(k)); bestDist < 0 || d < bestDist {
			best, bestDist = k, d
		}
	}
	switch {
	case best == StreamRawhide || best == StreamELN || ver == "":
		return string(best)
	default:
		return string(best) + ":" + ver
	}
}

// editDistance is the Levenshtein distance of two ASCII strings: the
// fewest insertions, deletions and substitutions that turn a into b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
