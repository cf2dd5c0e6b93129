package workflow

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/composeci/composeci/listener/event"
)

// DefaultPrefix names composeci's streams, consumer subjects and bucket on
// a NATS server when Options.Prefix is empty.
const DefaultPrefix = "COMPOSECI"

// prefixPattern bounds a prefix to what is valid in a stream name, a bucket
// name and a subject token alike. It is compiled on first use, not at
// start-up (docs/conventions.md).
var prefixPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`) })

// Durable consumer names. Only one durable may cover a work-queue subject,
// so every worker of every process shares the one named workerConsumer.
const (
	dispatcherConsumer = "dispatcher"
	workerConsumer     = "workers"
)

// natsLayout names everything composeci keeps on a NATS server. The
// prefix lets several deployments (and parallel tests) share one server.
type natsLayout struct {
	prefix string
}

func newNATSLayout(prefix string) (natsLayout, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !prefixPattern().MatchString(prefix) {
		return natsLayout{}, fmt.Errorf("NATS prefix %q: want 1 to 32 of [A-Za-z0-9_-]", prefix)
	}
	return natsLayout{prefix: prefix}, nil
}

// eventsStream keeps every event for a while (limits retention), deduplicated
// by Nats-Msg-Id.
func (l natsLayout) eventsStream() string { return l.prefix + "_EVENTS" }

// tasksStream is the work queue of stage tasks.
func (l natsLayout) tasksStream() string { return l.prefix + "_TASKS" }

// bucket is the KV bucket of workflows, keyed by encoded compose ID.
func (l natsLayout) bucket() string { return l.prefix + "_workflows" }

// resultsStream keeps one entry per ending of a workflow: the feed that
// readers follow by sequence.
func (l natsLayout) resultsStream() string { return l.prefix + "_RESULTS" }

func (l natsLayout) resultSubjects() string { return l.prefix + ".results.*" }

func (l natsLayout) resultSubject(composeID string) string {
	return l.prefix + ".results." + encodeToken(composeID)
}

func (l natsLayout) eventSubjects() string { return l.prefix + ".events.*" }

func (l natsLayout) eventSubject(composeID string) string {
	return l.prefix + ".events." + encodeToken(composeID)
}

func (l natsLayout) taskSubjects() string { return l.prefix + ".tasks.*" }

func (l natsLayout) taskSubject(s Stage) string { return l.prefix + ".tasks." + string(s) }

// maxDeliveriesAdvisory is where the server says a task reached MaxDeliver
// (and so will sit in the work queue for ever unless someone acts).
func (l natsLayout) maxDeliveriesAdvisory() string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + l.tasksStream() + "." + workerConsumer
}

// encodeToken makes a compose ID into one NATS subject token and KV key. A
// compose ID may hold '.' (the subject token separator, and a KV key's
// hierarchy separator) and '+' (not allowed in KV keys), so every byte
// outside [A-Za-z0-9_-] is written as '=' and two upper-case hex digits:
// Fedora-Rawhide-20261122.n.0 is Fedora-Rawhide-20261122=2En=2E0. '=' never
// occurs in a compose ID, so the encoding is reversible (decodeToken), and
// the result is valid both as a KV key ([-/_=.a-zA-Z0-9]) and as a subject
// token.
func encodeToken(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if tokenSafe(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xF])
	}
	return b.String()
}

// KeyOf is the KV key (and subject token) of a compose ID in composeci's
// buckets: every byte outside [A-Za-z0-9_-] escaped, reversibly.
func KeyOf(composeID string) string { return encodeToken(composeID) }

// NameOfKey reverses KeyOf.
func NameOfKey(key string) (string, error) { return decodeToken(key) }

// decodeToken reverses encodeToken; it rejects anything encodeToken cannot
// have written, so a key in the bucket that is not ours is noticed.
func decodeToken(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case tokenSafe(c):
			b.WriteByte(c)
		case c == '=' && i+2 < len(s):
			v, err := hex.DecodeString(s[i+1 : i+3])
			if err != nil || strings.ToUpper(s[i+1:i+3]) != s[i+1:i+3] || tokenSafe(v[0]) {
				return "", fmt.Errorf("bad escape %q in key %q", s[i:i+3], s)
			}
			b.WriteByte(v[0])
			i += 2
		default:
			return "", fmt.Errorf("bad byte %q in key %q", c, s)
		}
	}
	return b.String(), nil
}

func tokenSafe(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// eventMsgID is the Nats-Msg-Id an event is stored under: the source's
// message id when it has one (an AMQP redelivery carries the same one), else
// what the event says (kind, compose, status), so a poller that finds the
// same compose on every round stores it once per dedup window. Either is
// hashed: a message id is foreign input and must not reach a header raw.
func eventMsgID(e event.Event) string {
	h := sha256.New()
	prefix := "evt-"
	if e.MessageID != "" {
		prefix = "msg-"
		h.Write([]byte(e.MessageID))
	} else {
		fmt.Fprintf(h, "%s\x00%s\x00%s", e.Kind, e.ComposeID, e.Status)
	}
	return prefix + hex.EncodeToString(h.Sum(nil)[:16])
}
