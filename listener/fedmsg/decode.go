package fedmsg

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/composeci/composeci/fedfind"
	"github.com/composeci/composeci/listener/event"
)

// errIrrelevant marks a valid message that is not for composeci.
var errIrrelevant = errors.New("not for composeci")

// Topic suffixes (after org.fedoraproject.prod. or another prefix).
const (
	suffixComposeStatus = "pungi.compose.status.change"
	suffixJobDone       = "openqa.job.done"
)

func topicIs(key, suffix string) bool {
	return key == suffix || strings.HasSuffix(key, "."+suffix)
}

// decode maps a delivery to an Event. It returns an error wrapping
// errIrrelevant for a valid message that is not for composeci, and
// another error for an invalid one.
func decode(d amqp.Delivery, now time.Time, streams map[fedfind.StreamKind]bool) (event.Event, error) {
	var kind string
	switch {
	case topicIs(d.RoutingKey, suffixComposeStatus):
		kind = event.KindComposeStatus
	case topicIs(d.RoutingKey, suffixJobDone):
		kind = event.KindOpenQAJobDone
	default:
		return event.Event{}, fmt.Errorf("%w: topic %q", errIrrelevant, d.RoutingKey)
	}
	keys := []string{"BUILD"}
	if kind == event.KindComposeStatus {
		keys = []string{"compose_id", "status", "location"}
	}
	body, err := decodeBody(d, keys...)
	if err != nil {
		return event.Event{}, err
	}
	ev := event.Event{Kind: kind, Source: event.SourceAMQP, MessageID: d.MessageId, Topic: d.RoutingKey, At: sentAt(d, now)}
	switch kind {
	case event.KindComposeStatus:
		if ev.ComposeID, err = field(body, "compose_id", true); err != nil {
			return event.Event{}, err
		}
		if ev.Status, err = field(body, "status", true); err != nil {
			return event.Event{}, err
		}
		if !fedfind.ValidStatus(ev.Status) {
			return event.Event{}, fmt.Errorf("status %q is not a Pungi STATUS", ev.Status)
		}
		if ev.Location, err = field(body, "location", false); err != nil {
			return event.Event{}, err
		}
		if ev.Location != "" {
			if ev.Location, err = checkLocation(ev.Location); err != nil {
				return event.Event{}, err
			}
		}
		// A compose_id that does not validate below makes the message
		// invalid: Pungi sends only compose IDs in this field.
	case event.KindOpenQAJobDone:
		build, err := field(body, "BUILD", true)
		if err != nil {
			return event.Event{}, err
		}
		if !isComposeBuild(build) {
			return event.Event{}, fmt.Errorf("%w: BUILD %q is not a compose", errIrrelevant, build)
		}
		ev.ComposeID = build
	}
	if err := ev.Validate(); err != nil {
		return event.Event{}, err
	}
	// Validate has parsed the ID; parse again for its stream.
	id, _ := fedfind.ParseComposeID(ev.ComposeID)
	if st := fedfind.StreamOf(id); !streams[st.Kind] {
		return event.Event{}, fmt.Errorf("%w: compose %s is of stream %q, not followed", errIrrelevant, ev.ComposeID, st.Kind)
	}
	return ev, nil
}

// kindName names a JSON value's kind for people.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '0':
		return "number"
	case '[':
		return "array"
	}
	return "value"
}

// decodeBody checks the body — a UTF-8 JSON object (content_encoding utf-8,
// or none, which fedora-messaging also reads as UTF-8) — and returns its
// members named keys, raw (of a name given twice, the last, as
// encoding/json keeps). The other members are checked but not decoded:
// most of the messages the listener reads are dropped on one field
// (BUILD), and decoding all of each body was most of the filter's work.
func decodeBody(d amqp.Delivery, keys ...string) (map[string]jsontext.Value, error) {
	switch strings.ToLower(d.ContentEncoding) {
	case "", "utf-8", "utf8":
	default:
		return nil, fmt.Errorf("content encoding %q is not utf-8", d.ContentEncoding)
	}
	if !utf8.Valid(d.Body) {
		return nil, errors.New("body is not UTF-8")
	}
	dec := jsontext.NewDecoder(bytes.NewBuffer(d.Body), jsontext.AllowDuplicateNames(true))
	notObject := func(err error) error { return fmt.Errorf("body is not a JSON object: %w", err) }
	if kind := dec.PeekKind(); kind != '{' {
		// Read the value first: PeekKind judges by the first byte, so
		// "not json" would pass for null.
		v, err := dec.ReadValue()
		if err != nil {
			return nil, notObject(err)
		}
		return nil, notObject(fmt.Errorf("a JSON %s", kindName(v.Kind())))
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, notObject(err)
	}
	body := make(map[string]jsontext.Value, len(keys))
	var name []byte
	for dec.PeekKind() != '}' {
		raw, err := dec.ReadValue() // the member's name
		if err != nil {
			return nil, notObject(err)
		}
		if name, err = jsontext.AppendUnquote(name[:0], raw); err != nil {
			return nil, notObject(err)
		}
		key := ""
		for _, k := range keys {
			if string(name) == k {
				key = k
				break
			}
		}
		if key == "" {
			err = dec.SkipValue()
		} else if raw, err = dec.ReadValue(); err == nil {
			body[key] = raw.Clone()
		}
		if err != nil {
			return nil, notObject(err)
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, notObject(err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, notObject(fmt.Errorf("data after the object: %v", err))
	}
	return body, nil
}

// field reads a string field; null counts as absent.
func field(body map[string]jsontext.Value, key string, required bool) (string, error) {
	raw, ok := body[key]
	if !ok || raw.Kind() == 'n' {
		if required {
			return "", fmt.Errorf("field %q missing", key)
		}
		return "", nil
	}
	if raw.Kind() != '"' {
		return "", fmt.Errorf("field %q is not a string: %s", key, clip(string(raw)))
	}
	b, err := jsontext.AppendUnquote(nil, raw)
	if err != nil {
		return "", fmt.Errorf("field %q: %w", key, err)
	}
	s := string(b)
	if required && s == "" {
		return "", fmt.Errorf("field %q empty", key)
	}
	return s, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// checkLocation accepts an absolute http or https URL with a host and
// gives it back with its scheme in lower case ("HTTPS://h/c" is
// "https://h/c"), the form every later step compares and joins; the rest
// of the URL is kept as sent.
func checkLocation(loc string) (string, error) {
	u, err := url.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("location %q: %w", clip(loc), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		!strings.EqualFold(loc[:min(len(loc), len(u.Scheme))], u.Scheme) {
		return "", fmt.Errorf("location %q is not an http(s) URL", clip(loc))
	}
	return u.Scheme + loc[len(u.Scheme):], nil
}

// isComposeBuild reports whether an openQA BUILD names a compose rather
// than an update, a Koji task, a side tag, a COPR or a CoreOS build
// (as fedora_openqa names them), or an extra run that is not
// reported (…-EXTRA, …-NOREPORT).
func isComposeBuild(build string) bool {
	for _, p := range []string{"Update-", "Kojitask-", "TAG_", "COPR_", "Fedora-CoreOS-"} {
		if strings.HasPrefix(build, p) {
			return false
		}
	}
	for _, s := range []string{"-EXTRA", "-NOREPORT"} {
		if strings.HasSuffix(build, s) {
			return false
		}
	}
	id, err := fedfind.ParseComposeID(build)
	return err == nil && id.String() == build
}

// sentAt reads the sent-at header (ISO 8601: Python's +00:00 form or
// openQA's Z form, with or without fractional seconds, or without a zone,
// taken as UTC); then the AMQP timestamp property; else now.
func sentAt(d amqp.Delivery, now time.Time) time.Time {
	var s string
	switch v := d.Headers["sent-at"].(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	case time.Time:
		if !v.IsZero() {
			return v.UTC()
		}
	}
	s = strings.TrimSpace(s)
	if s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
		if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err == nil {
			return t
		}
	}
	if !d.Timestamp.IsZero() {
		return d.Timestamp.UTC()
	}
	return now.UTC()
}
