// Package redact hides secrets in what composeci logs and prints.
package redact

import (
	"net/url"
	"strings"
)

// URL returns u with the password of its user information replaced by
// "xxxxx". u may be a comma-separated list (NATS takes one), each element
// redacted. Something that does not parse as a URL but holds user
// information is cut down to what follows the '@', so a secret never
// leaks through a malformed address.
func URL(u string) string {
	parts := strings.Split(u, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		parsed, err := url.Parse(p)
		switch {
		case err == nil:
			parts[i] = parsed.Redacted()
		case strings.Contains(p, "@"):
			parts[i] = "…" + p[strings.LastIndex(p, "@"):]
		default:
			parts[i] = p
		}
	}
	return strings.Join(parts, ",")
}
