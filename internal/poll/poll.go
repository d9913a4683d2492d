// Package poll watches files by polling: it notices a change through a
// stamp (names, sizes and modification times) and reloads.
package poll

import (
	"context"
	"time"
)

// Reload calls stamp every interval until ctx ends and, whenever its value
// differs from the last one seen (initially last), calls reload; each
// reload is reported once per change, to onReload (if set) when it
// succeeded and to onError (if set) when it failed, and the next change
// tries again.
func Reload(ctx context.Context, interval time.Duration, last string, stamp func() string, reload func() error, onReload func(), onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s := stamp()
			if s == last {
				continue
			}
			last = s
			switch err := reload(); {
			case err != nil && onError != nil:
				onError(err)
			case err == nil && onReload != nil:
				onReload()
			}
		}
	}
}
