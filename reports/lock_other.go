//go:build !unix

package reports

import (
	"context"
	"os"
)

// lockExclusive is a no-op where flock does not exist: there, one process
// must own a data directory (composeci runs on Unix in production).
func lockExclusive(ctx context.Context, root *os.Root, name string) (unlock func(), err error) {
	return func() {}, ctx.Err()
}
