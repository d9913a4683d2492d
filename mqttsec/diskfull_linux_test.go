//go:build linux

package mqttsec_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttsec/mqttsec/internal/smalldisk"
	"github.com/mqttsec/mqttsec/mqttsec"
	"github.com/mqttsec/mqttsec/mqttsec/replay"
)

// A gateway whose state is on a disk that fills up refuses requests
// before their handler runs (no counter can be reserved for the reply, or
// the replay record cannot be written), logs why, and never logs a reply
// as not sent: nothing ran that could not be answered. Once space is freed
// it answers again, with no restart.
func TestFullDiskRefusesBeforeTheHandler(t *testing.T) {
	mnt := smalldisk.Mount(t, 256<<10)
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			dir := filepath.Join(mnt, fmt.Sprint(proto))
			store := mustT(replay.CreateFileStore(filepath.Join(dir, "replay"), replay.FileStoreOptions{Width: mqttsec.DefaultReplayWindow}))
			t.Cleanup(func() { store.Close() })
			// A block of one: every reply reserves its counter on disk.
			counter := mustT(replay.CreateFileCounter(filepath.Join(dir, "counter"), 1, 1))
			t.Cleanup(func() { counter.Close() })
			w := newLiveWorld(t, proto, liveOptions{configure: func(c *mqttsec.ServerConfig) {
				c.Replay, c.Counter = store, counter
			}})
			if out, err := w.call(w.client, "before", 10*time.Second); err != nil || string(out) != "before" {
				t.Fatalf("before the disk filled: %q, %v", out, err)
			}
			fill := filepath.Join(mnt, "fill")
			smalldisk.Fill(t, fill)
			ran := w.runs.Load()
			for i := range 5 {
				if _, err := w.call(w.client, fmt.Sprint("full ", i), 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("request %d on a full disk: %v, want no answer", i, err)
				}
			}
			refusedFull := func() uint64 { return stat(w.gw, mqttsec.StatNoCounter) + stat(w.gw, mqttsec.StatReplayStore) }
			waitFor(t, "five refusals", func() bool { return refusedFull() == 5 })
			if n := w.runs.Load() - ran; n != 0 {
				t.Fatalf("%d handlers ran on a full disk", n)
			}
			if n := w.lines("reply not sent"); n != 0 {
				t.Fatalf("%d replies not sent:\n%s", n, w.log)
			}
			if err := os.Remove(fill); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				payload := fmt.Sprint("freed ", i)
				if out, err := w.call(w.client, payload, 10*time.Second); err != nil || string(out) != payload {
					t.Fatalf("once space was freed: %q, %v", out, err)
				}
			}
		})
	}
}
